"""RankRAGReranker: a LangChain document compressor that reorders documents by RankRAG's relevance score.

It is also a Runnable from ``{"query": str, "documents": [Document, ...]}`` to the kept documents, so it
composes with ``|``::

    rerank = {"query": RunnablePassthrough(), "documents": retriever} | reranker
    rerank.invoke("Who wrote Hamlet?")   # the best top_n documents, scores in metadata
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict

from langchain_core.callbacks import AsyncCallbackManager, CallbackManager, Callbacks
from langchain_core.documents import Document
from langchain_core.documents.compressor import BaseDocumentCompressor
from langchain_core.runnables import RunnableConfig, RunnableSerializable
from langchain_core.runnables.config import (
    ensure_config,
    get_async_callback_manager_for_config,
    get_callback_manager_for_config,
)
from pydantic import ConfigDict, Field

from rankrag.integration import ranking
from rankrag.integration.metadata import score_metadata
from rankrag.integration.ranking import RERANK_DEFAULTS, RerankRequest, RerankSettings
from rankrag.model.hybrid import FirstStageKind
from rankrag.model.selection import Selection
from rankrag.model.validation import check_query
from rankrag_langchain._convert import check_documents, question_of, rerank_request, scored_document
from rankrag_langchain._model import RankRAGModelFields

RUN_NAME = "RankRAGReranker"


class RerankInput(TypedDict):
    """What :class:`RankRAGReranker` takes as a Runnable ("question" or "input" may stand for "query")."""

    query: str
    documents: list[Document]


PIPE_HINT = (
    "compose it as {'query': RunnablePassthrough(), 'documents': retriever} | reranker, or use "
    "ContextualCompressionRetriever(base_compressor=reranker, base_retriever=retriever)"
)


def rerank_input(value: Any) -> tuple[str, Any]:
    """The query and the documents from a Runnable input, with the supported composition in the error."""
    if not isinstance(value, dict):
        got = "a list of documents" if isinstance(value, (list, tuple)) else f"a {type(value).__name__}"
        raise TypeError(
            f"RankRAGReranker needs the query as well as the documents: its input is "
            f"{{'query': ..., 'documents': [...]}}, got {got} (as `retriever | reranker` gives); {PIPE_HINT}"
        )
    if "documents" not in value:
        raise ValueError(f"the RankRAGReranker input dict needs a 'documents' entry, got {sorted(value)}; {PIPE_HINT}")
    return question_of(value, "query"), value["documents"]


def _checked(documents: Sequence[Document], query: str) -> list[Document]:
    check_query(query)
    return check_documents(documents)


class RankRAGReranker(
    RankRAGModelFields,
    BaseDocumentCompressor,
    RunnableSerializable[RerankInput, list[Document]],  # type: ignore[misc]  # langchain-core base classes declare conflicting generic bases
):
    """Rerank retrieved documents with the RankRAG model; use it in ``ContextualCompressionRetriever`` or
    pipe ``{"query": ..., "documents": ...}`` into it.

    Each returned Document is a copy of an input one, best first, whose metadata adds the scores named in
    :mod:`rankrag.integration.metadata` (``relevance_score``, ``llm_score``, ``dense_score``, ``retrieval_score``,
    ``retrieval_rank``). Inputs are never modified. Blank documents (empty or whitespace-only text) are not
    scored and never returned (see :mod:`rankrag.integration.ranking`).

    >>> reranker = RankRAGReranker(top_n=5)                               # embedded SmolLM2
    >>> reranker = RankRAGReranker(model=llm.model, score_threshold=0.5)  # share a chat model's weights
    >>> ({"query": RunnablePassthrough(), "documents": retriever} | reranker).invoke("Who wrote Hamlet?")
    """

    model_config = ConfigDict(extra="forbid")

    top_n: int | None = Field(default=RERANK_DEFAULTS.top_n, gt=0)
    """How many documents to keep (best first), 5 by default as RankRAG's k; None keeps all."""
    score_threshold: float | None = RERANK_DEFAULTS.score_threshold
    """Drop documents whose ``relevance_score`` is below this value: by default the calibrated probability that the
    document is relevant (0.5 keeps what is more likely relevant than not)."""
    batch_size: int | None = Field(default=RERANK_DEFAULTS.batch_size, gt=0)
    """Passages scored per forward pass; None uses the model's default."""
    first_stage: FirstStageKind = RERANK_DEFAULTS.first_stage
    """The retriever: "lexical" (BM25 or other keyword scores, or unknown) or "dense" (a vector store, whose
    similarity in the metadata, see ``score_key``, is then the dense signal and no embedding is computed)."""
    alpha: float | None = Field(default=RERANK_DEFAULTS.alpha, ge=0.0, le=1.0)
    """None (the default): the calibrated probability of relevance from the LLM score, the dense similarity and the
    retriever's signal, with the model's calibrated coefficients. A number: the LLM score fused with the retriever's signal alone at that
    weight (1 is LLM only, 0 keeps retrieval order). The retriever's signal is its score from document metadata
    (see ``score_key``) or, when some document has none, the input order."""
    score_key: str | None = None
    """Metadata key of the retriever's score (higher is better). None looks for "score",
    "relevance_score" or "similarity_score" on every document and uses the input order otherwise."""

    def _settings(self) -> RerankSettings:
        return RerankSettings.of(self)

    @staticmethod
    def _results(
        documents: Sequence[Document], request: RerankRequest, selection: Selection
    ) -> tuple[list[Document], dict[str, Any]]:
        """The kept documents (scored copies), and the trace output listing every non-blank document's scores."""

        def retrieval_score(index: int) -> float | None:
            return None if request.retrieval_scores is None else request.retrieval_scores[index]

        kept = [scored_document(documents[p.index], p, retrieval_score(p.index)) for p in selection.kept]
        scores = [score_metadata(p, retrieval_score(p.index)) for p in selection.ranking]
        return kept, {"documents": kept, "scores": scores}

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        """The best ``top_n`` non-blank documents for ``query``, as scored copies; ``[]`` for no documents."""
        items = _checked(documents, query)
        if not items:
            return []
        run = CallbackManager.configure(inheritable_callbacks=callbacks).on_chain_start(
            None, {"query": query, "documents": items}, name=RUN_NAME
        )
        try:
            request = rerank_request(query, items, self.score_key)
            kept, trace = self._results(items, request, ranking.select(self.rankrag_model, request, self._settings()))
        except BaseException as error:
            run.on_chain_error(error)
            raise
        run.on_chain_end(trace)
        return kept

    # Kept twin of compress_documents(): LangChain's async interface. The sync and async callback managers share no
    # interface, so the run's start, error and end are written once for each.
    async def acompress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        """Async :meth:`compress_documents`; the scoring runs in a worker thread, off the event loop."""
        items = _checked(documents, query)
        if not items:
            return []
        run = await AsyncCallbackManager.configure(inheritable_callbacks=callbacks).on_chain_start(
            None, {"query": query, "documents": items}, name=RUN_NAME
        )
        try:
            request = rerank_request(query, items, self.score_key)
            selection = await ranking.aselect(self.rankrag_model, request, self._settings())
            kept, trace = self._results(items, request, selection)
        except BaseException as error:
            await run.on_chain_error(error)
            raise
        await run.on_chain_end(trace)
        return kept

    # ------------------------------------------------------------------------------ Runnable
    def invoke(self, input: RerankInput, config: RunnableConfig | None = None, **kwargs: Any) -> list[Document]:
        """``{"query": str, "documents": [...]}`` -> :meth:`compress_documents` (the kept documents)."""
        query, documents = rerank_input(input)
        callbacks = get_callback_manager_for_config(ensure_config(config))
        return list(self.compress_documents(documents, query, callbacks=callbacks))

    async def ainvoke(self, input: RerankInput, config: RunnableConfig | None = None, **kwargs: Any) -> list[Document]:
        """Async :meth:`invoke`, over :meth:`acompress_documents`."""
        query, documents = rerank_input(input)
        callbacks = get_async_callback_manager_for_config(ensure_config(config))
        return list(await self.acompress_documents(documents, query, callbacks=callbacks))

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

from rankrag import adapter_support
from rankrag.model.selection import Selection
from rankrag.model.validation import check_query
from rankrag_langchain._convert import check_documents, first_stage_scores, question_of, scored_document
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


class RankRAGReranker(
    RankRAGModelFields,
    BaseDocumentCompressor,
    RunnableSerializable[RerankInput, list[Document]],  # type: ignore[misc]
):
    """Rerank retrieved documents with the RankRAG model; use it in ``ContextualCompressionRetriever`` or
    pipe ``{"query": ..., "documents": ...}`` into it.

    Each returned Document is a copy of an input one, best first, whose metadata adds
    ``relevance_score`` (the final score: P("True") of the ranking prompt, fused with the retriever's
    signal when ``alpha`` < 1), ``llm_score`` (P("True") alone) and ``retrieval_rank`` (the 0-based
    position of the document in the input list). Inputs are never modified. Blank documents (empty or
    whitespace-only text) are not scored and never returned (see :mod:`rankrag.adapter_support`).

    >>> reranker = RankRAGReranker(top_n=5)                               # embedded SmolLM2
    >>> reranker = RankRAGReranker(model=llm.model, score_threshold=0.5)  # share a chat model's weights
    >>> ({"query": RunnablePassthrough(), "documents": retriever} | reranker).invoke("Who wrote Hamlet?")
    """

    model_config = ConfigDict(extra="forbid")

    top_n: int | None = Field(default=5, gt=0)
    """How many documents to keep (best first), 5 by default as RankRAG's k; None keeps all."""
    score_threshold: float | None = None
    """Drop documents whose ``relevance_score`` is below this value."""
    batch_size: int | None = Field(default=None, gt=0)
    """Passages scored per forward pass; None uses the model's default."""
    alpha: float | None = Field(default=None, ge=0.0, le=1.0)
    """Weight of the LLM score against the retriever's: 1 is LLM only, 0 keeps retrieval order, None is
    the model's calibrated default. The retriever's signal is its score from document metadata (see
    ``score_key``) or, without one, the input order."""
    score_key: str | None = None
    """Metadata key of the retriever's score (higher is better). None looks for "score",
    "relevance_score" or "similarity_score" on every document and uses the input order otherwise."""

    def _selection_kwargs(self, documents: Sequence[Document]) -> dict[str, Any]:
        """What :func:`adapter_support.select` needs besides the model and query; blank documents are not scored."""
        with_text = [i for i, document in enumerate(documents) if not adapter_support.is_blank(document.page_content)]
        scores = first_stage_scores([documents[i] for i in with_text], self.score_key)
        per_document: list[float | None] | None = None
        if scores is not None:
            per_document = [None] * len(documents)
            for i, score in zip(with_text, scores):
                per_document[i] = score
        return {
            "top_n": self.top_n,
            "score_threshold": self.score_threshold,
            "first_stage_scores": per_document,
            "alpha": self.alpha,
            "batch_size": self.batch_size,
        }

    @staticmethod
    def _results(documents: Sequence[Document], selection: Selection) -> tuple[list[Document], dict[str, Any]]:
        """The kept documents (scored copies), and the trace output listing every document's scores."""
        kept_documents = [scored_document(documents[p.index], p) for p in selection.kept]
        scores = [
            {"retrieval_rank": p.index, "relevance_score": p.score, "llm_score": p.metadata["llm_score"]}
            for p in selection.ranking
        ]
        return kept_documents, {"documents": kept_documents, "scores": scores}

    def compress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """The best ``top_n`` non-blank documents for ``query``, as scored copies; ``[]`` for no documents."""
        check_query(query)
        items = check_documents(documents)
        if not items:
            return []
        run = CallbackManager.configure(inheritable_callbacks=callbacks).on_chain_start(
            None, {"query": query, "documents": items}, name=RUN_NAME
        )
        try:
            texts = [document.page_content or "" for document in items]
            selection = adapter_support.select(self.rankrag_model, query, texts, **self._selection_kwargs(items))
            kept, trace = self._results(items, selection)
        except BaseException as error:
            run.on_chain_error(error)
            raise
        run.on_chain_end(trace)
        return kept

    # Kept twin of compress_documents(): LangChain's async interface, with the async callback manager.
    async def acompress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """Async :meth:`compress_documents`; the scoring runs in a worker thread, off the event loop."""
        check_query(query)
        items = check_documents(documents)
        if not items:
            return []
        run = await AsyncCallbackManager.configure(inheritable_callbacks=callbacks).on_chain_start(
            None, {"query": query, "documents": items}, name=RUN_NAME
        )
        try:
            texts = [document.page_content or "" for document in items]
            selection = await adapter_support.aselect(self.rankrag_model, query, texts, **self._selection_kwargs(items))
            kept, trace = self._results(items, selection)
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

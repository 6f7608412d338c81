"""create_rankrag_query_engine: a LlamaIndex retriever (or index) turned into the RankRAG pipeline, as a query engine
that says "not found" instead of answering when no node reaches the relevance threshold.

LlamaIndex's own engine, handed no nodes, answers "Empty Response"; this one answers the configurable not-found
message, never calls the LLM then, and marks ``response.metadata["abstained"]``, streaming or not.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from llama_index.core.base.response.schema import RESPONSE_TYPE, Response, StreamingResponse
from llama_index.core.callbacks import CBEventType, EventPayload
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.response_synthesizers import get_response_synthesizer
from llama_index.core.retrievers import BaseRetriever, VectorIndexRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle

from rankrag.defaults import DEFAULT_MAX_NEW_TOKENS, NOT_FOUND_MESSAGE
from rankrag.integration.load_options import check_pipeline_options
from rankrag.model.hybrid import FirstStageKind
from rankrag.model.validation import check_positive, check_query, check_threshold
from rankrag_llamaindex.llm import RankRAGLLM
from rankrag_llamaindex.reranker import RankRAGReranker

ABSTAINED = "abstained"
# Candidates an index's retriever hands the reranker when the engine is built from an index.
DEFAULT_CANDIDATES = 20


def _once(text: str) -> Generator[str, None, None]:
    yield text


class RankRAGQueryEngine(RetrieverQueryEngine):
    """A :class:`RetrieverQueryEngine` that checks the query before retrieving and answers ``not_found_message``
    (without calling the LLM) when the node postprocessors leave no node. Build it with
    :func:`create_rankrag_query_engine`."""

    def __init__(self, *args: Any, not_found_message: str = NOT_FOUND_MESSAGE, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.not_found_message = not_found_message

    def _not_found(self) -> RESPONSE_TYPE:
        metadata = {ABSTAINED: True}
        if getattr(self._response_synthesizer, "_streaming", False):
            return StreamingResponse(response_gen=_once(self.not_found_message), source_nodes=[], metadata=metadata)
        return Response(response=self.not_found_message, source_nodes=[], metadata=metadata)

    @staticmethod
    def _answered(response: RESPONSE_TYPE) -> RESPONSE_TYPE:
        response.metadata = {**(response.metadata or {}), ABSTAINED: False}
        return response

    def _respond(self, query_bundle: QueryBundle, nodes: list[NodeWithScore]) -> RESPONSE_TYPE:
        if not nodes:
            return self._not_found()
        return self._answered(self._response_synthesizer.synthesize(query=query_bundle, nodes=nodes))

    def _query(self, query_bundle: QueryBundle) -> RESPONSE_TYPE:
        check_query(query_bundle.query_str)
        with self.callback_manager.event(
            CBEventType.QUERY, payload={EventPayload.QUERY_STR: query_bundle.query_str}
        ) as query_event:
            response = self._respond(query_bundle, self.retrieve(query_bundle))
            query_event.on_end(payload={EventPayload.RESPONSE: response})
        return response

    # Kept twin of _query, over the async retrieval and synthesis.
    async def _aquery(self, query_bundle: QueryBundle) -> RESPONSE_TYPE:
        check_query(query_bundle.query_str)
        with self.callback_manager.event(
            CBEventType.QUERY, payload={EventPayload.QUERY_STR: query_bundle.query_str}
        ) as query_event:
            nodes = await self.aretrieve(query_bundle)
            if not nodes:
                response = self._not_found()
            else:
                response = self._answered(await self._response_synthesizer.asynthesize(query=query_bundle, nodes=nodes))
            query_event.on_end(payload={EventPayload.RESPONSE: response})
        return response


def create_rankrag_query_engine(
    retriever: Any,
    *,
    reranker: RankRAGReranker | None = None,
    llm: RankRAGLLM | None = None,
    top_k: int = 5,
    score_threshold: float | None = None,
    not_found_message: str = NOT_FOUND_MESSAGE,
    streaming: bool = False,
    **model_options: Any,
) -> RankRAGQueryEngine:
    """The RankRAG query engine: retrieve, rerank with the RankRAG model, keep ``top_k`` (5, RankRAG's k) whose
    relevance probability reaches ``score_threshold``, answer from them with LlamaIndex's default templates.

    ``retriever``: a LlamaIndex retriever, or an index (its ``as_retriever(similarity_top_k=20)``). ``reranker`` and
    ``llm`` default to a :class:`RankRAGReranker` built from ``model_options`` (``model=``, ``model_name=`` ...; its
    ``first_stage`` is "dense" for a vector index's retriever) and a :class:`RankRAGLLM` on its model. When no node
    reaches the threshold, the response is ``not_found_message`` with ``metadata["abstained"]`` True, and the LLM
    is not called. An empty or blank query is a ValueError before anything is retrieved.
    """
    check_positive(top_k, "top_k")
    check_threshold(score_threshold)
    check_pipeline_options(model_options, (reranker, llm), "engine")
    if not isinstance(retriever, BaseRetriever):
        if not hasattr(retriever, "as_retriever"):
            raise TypeError(f"expected a LlamaIndex retriever or index, got {type(retriever).__name__}")
        retriever = retriever.as_retriever(similarity_top_k=DEFAULT_CANDIDATES)
    if reranker is None:
        first_stage: FirstStageKind = "dense" if isinstance(retriever, VectorIndexRetriever) else "lexical"
        options = model_options if llm is None else {"model": llm.model}
        reranker = RankRAGReranker(top_n=top_k, score_threshold=score_threshold, first_stage=first_stage, **options)
    elif score_threshold is not None and reranker.score_threshold != score_threshold:
        raise ValueError(
            f"score_threshold={score_threshold} differs from the given reranker's ({reranker.score_threshold}); "
            "set it on the reranker"
        )
    if llm is None:
        llm = RankRAGLLM(model=reranker.model, max_new_tokens=DEFAULT_MAX_NEW_TOKENS)
    synthesizer = get_response_synthesizer(llm=llm, streaming=streaming)
    return RankRAGQueryEngine(
        retriever, synthesizer, node_postprocessors=[reranker], not_found_message=not_found_message
    )

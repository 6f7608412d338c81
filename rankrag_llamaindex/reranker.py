"""RankRAGReranker: RankRAG's P(True) reranking as a LlamaIndex node postprocessor."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from llama_index.core.bridge.pydantic import ConfigDict, Field
from llama_index.core.callbacks import CBEventType, EventPayload
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

from rankrag.integration import ranking
from rankrag.integration.ranking import RERANK_DEFAULTS, RerankRequest, RerankSettings
from rankrag.model.hybrid import FirstStageKind
from rankrag.model.selection import Selection
from rankrag.model.validation import check_query
from rankrag_llamaindex import _convert
from rankrag_llamaindex._component import RankRAGComponent

dispatcher = get_dispatcher(__name__)


class RankRAGReranker(RankRAGComponent, BaseNodePostprocessor):
    """Reorders retrieved nodes by the shared RankRAG model's relevance score, best first.

    ``NodeWithScore.score`` becomes the final score (see :meth:`RankRAGModel.rerank`); the returned nodes are
    copies whose metadata adds the scores named in :mod:`rankrag.integration.metadata` (``relevance_score``,
    ``llm_score``, ``dense_score``, ``retrieval_score``, ``retrieval_rank``). Nodes whose text is blank
    (empty or whitespace only) are not sent to the model and never returned (see
    :mod:`rankrag.integration.ranking`).

    >>> reranker = RankRAGReranker(top_n=5)                      # embedded SmolLM2, shared with RankRAGLLM
    >>> engine = index.as_query_engine(similarity_top_k=20, node_postprocessors=[reranker], llm=RankRAGLLM())
    """

    model_config = ConfigDict(protected_namespaces=())
    __init__ = RankRAGComponent.__init__

    top_n: int | None = Field(
        default=RERANK_DEFAULTS.top_n, gt=0, description="Number of nodes returned (best first); None keeps all."
    )
    score_threshold: float | None = Field(
        default=RERANK_DEFAULTS.score_threshold,
        description="Drop nodes whose relevance_score (the calibrated probability of relevance) is below this.",
    )
    batch_size: int | None = Field(default=RERANK_DEFAULTS.batch_size, gt=0, description="Passages per forward pass.")
    first_stage: FirstStageKind = Field(
        default=RERANK_DEFAULTS.first_stage,
        description=(
            'The retriever: "lexical" (BM25 or other keyword scores, or unknown) or "dense" (a vector index, whose '
            "node scores are then the dense signal and no embedding is computed)."
        ),
    )
    alpha: float | None = Field(
        default=RERANK_DEFAULTS.alpha,
        ge=0.0,
        le=1.0,
        description=(
            "None: the hybrid ranking (LLM score, dense similarity and retrieval signal, the model's calibrated "
            "weights). A number: the LLM score fused with the retrieval signal alone at that weight."
        ),
    )
    metadata_mode: MetadataMode = Field(
        default=MetadataMode.EMBED, description="Which node metadata is shown to the model with the text."
    )

    @classmethod
    def class_name(cls) -> str:
        return "RankRAGReranker"

    # ---------------------------------------------------------------------- postprocess
    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        request = self._request(nodes, query_bundle)
        with self._events(nodes, query_bundle, request.query) as finish:
            return finish(ranking.select(self._model, request, self._settings()))

    # Kept twin of _postprocess_nodes(): LlamaIndex's async interface, with its signature; the steps are shared
    # (_request, _events), only the awaited selection differs.
    @dispatcher.span
    async def _apostprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        request = self._request(nodes, query_bundle)
        with self._events(nodes, query_bundle, request.query) as finish:
            return finish(await ranking.aselect(self._model, request, self._settings()))

    # ------------------------------------------------------------------------ helpers
    def _request(self, nodes: Sequence[NodeWithScore], query_bundle: QueryBundle | None) -> RerankRequest:
        """The query, one text per node ("" for a node whose own text is blank, which is not scored) and the
        nodes' retrieval scores."""
        query = _query_string(query_bundle)
        if isinstance(nodes, (str, NodeWithScore)) or not isinstance(nodes, Sequence):
            raise TypeError(f"nodes must be a list of NodeWithScore, got {type(nodes).__name__}")
        for index, node in enumerate(nodes):
            if not isinstance(node, NodeWithScore):
                raise TypeError(f"nodes[{index}] must be a NodeWithScore, got {type(node).__name__}")
        return _convert.rerank_request(query, nodes, self.metadata_mode)

    def _settings(self) -> RerankSettings:
        return RerankSettings.of(self)

    @contextmanager
    def _events(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None, query: str
    ) -> Iterator[Callable[[Selection], list[NodeWithScore]]]:
        """LlamaIndex's rerank start and end events around a rerank; yields what turns the selection into the
        returned nodes and reports them. No nodes: no events, and nothing returned."""
        if not nodes:
            yield lambda _: []
            return
        top_n = len(nodes) if self.top_n is None else self.top_n
        dispatcher.event(ReRankStartEvent(query=query_bundle, nodes=nodes, top_n=top_n, model_name=self.model_name))
        payload: dict[str, Any] = {
            EventPayload.NODES: nodes,
            EventPayload.MODEL_NAME: self.model_name,
            EventPayload.QUERY_STR: query,
            EventPayload.TOP_K: top_n,
        }
        with self.callback_manager.event(CBEventType.RERANKING, payload=payload) as event:

            def finish(selection: Selection) -> list[NodeWithScore]:
                result = [_convert.scored_node(nodes[p.index], p) for p in selection.kept]
                event.on_end(payload={EventPayload.NODES: result})
                dispatcher.event(ReRankEndEvent(nodes=result))
                return result

            yield finish


def _query_string(query_bundle: QueryBundle | None) -> str:
    if query_bundle is None:
        raise ValueError("RankRAGReranker needs the query: pass query_bundle=QueryBundle(...) or query_str=...")
    query = getattr(query_bundle, "query_str", None)
    if query is None:
        raise ValueError("query_bundle has no query string; RankRAGReranker ranks nodes against query_str")
    return check_query(query, "query_bundle.query_str")

"""RankRAGReranker: RankRAG's P(True) reranking as a LlamaIndex node postprocessor."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from llama_index.core.bridge.pydantic import ConfigDict, Field, PrivateAttr
from llama_index.core.callbacks import CBEventType, EventPayload
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle
from typing_extensions import Self

from rankrag import RankRAGModel, adapter_support
from rankrag.model.selection import Selection
from rankrag.model.validation import check_query
from rankrag_llamaindex import _convert

dispatcher = get_dispatcher(__name__)


class RankRAGReranker(BaseNodePostprocessor):
    """Reorders retrieved nodes by the shared RankRAG model's relevance score, best first.

    ``NodeWithScore.score`` becomes the RankRAG score (fused with the retrieval score when ``alpha`` < 1);
    the returned nodes are copies whose metadata keeps ``retrieval_score`` and ``llm_score`` (P(True)).
    Nodes whose text is blank (empty or whitespace only) are not sent to the model and never returned
    (see :mod:`rankrag.adapter_support`).

    >>> reranker = RankRAGReranker(top_n=5)                      # embedded SmolLM2, shared with RankRAGLLM
    >>> engine = index.as_query_engine(similarity_top_k=20, node_postprocessors=[reranker], llm=RankRAGLLM())
    """

    model_config = ConfigDict(protected_namespaces=())

    top_n: int = Field(default=5, gt=0, description="Number of nodes returned.")
    score_threshold: float | None = Field(default=None, description="Drop nodes scoring below this.")
    batch_size: int | None = Field(default=None, gt=0, description="Passages per forward pass.")
    alpha: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Weight of the LLM score against the retrieval signal; None uses the model's default.",
    )
    metadata_mode: MetadataMode = Field(
        default=MetadataMode.EMBED, description="Which node metadata is shown to the model with the text."
    )
    model_name: str = Field(description="Name of the loaded RankRAG model.")

    _model: RankRAGModel = PrivateAttr()

    # The load keywords are spelled out (as in RankRAGLLM) so that IDEs and help() show them; both forward them to _convert.load_options.
    def __init__(
        self,
        model: RankRAGModel | str | os.PathLike[str] | None = None,
        *,
        source: str | os.PathLike[str] | None = None,
        quantization: str | None = None,
        adapter: str | os.PathLike[str] | None = "default",
        dtype: str | None = None,
        device: str | None = None,
        trust_remote_code: bool = False,
        **kwargs: Any,
    ) -> None:
        options = _convert.load_options(
            source, quantization, adapter, dtype, device, trust_remote_code, kwargs.pop("model_name", None)
        )
        resolved = _convert.resolve_model(model, options)
        super().__init__(model_name=resolved.name, **kwargs)  # type: ignore[call-arg]
        self._model = resolved

    @classmethod
    def class_name(cls) -> str:
        return "RankRAGReranker"

    def to_dict(self, **kwargs: Any) -> dict[str, Any]:
        """The settings and the model's load arguments: ``RankRAGReranker.from_dict(d)`` rebuilds it (the same shared model)."""
        return {**super().to_dict(**kwargs), _convert.LOAD_KEY: _convert.load_spec(self._model)}

    @classmethod
    def from_dict(cls, data: dict[str, Any], **kwargs: Any) -> Self:
        return cls(**_convert.from_serialized({**data, **kwargs}))

    @property
    def model(self) -> RankRAGModel:
        """The shared RankRAGModel this reranker scores with."""
        return self._model

    # ---------------------------------------------------------------------- postprocess
    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        query, texts = self._request(nodes, query_bundle)
        if not nodes:
            return []
        self._start_event(nodes, query_bundle)
        with self.callback_manager.event(CBEventType.RERANKING, payload=self._callback_payload(nodes, query)) as event:
            selection = adapter_support.select(self._model, query, texts, **self._selection_options(nodes))
            result = self._result(nodes, selection)
            event.on_end(payload={EventPayload.NODES: result})
        dispatcher.event(ReRankEndEvent(nodes=result))
        return result

    # Kept twin of _postprocess_nodes(): LlamaIndex's async interface.
    @dispatcher.span
    async def _apostprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        query, texts = self._request(nodes, query_bundle)
        if not nodes:
            return []
        self._start_event(nodes, query_bundle)
        with self.callback_manager.event(CBEventType.RERANKING, payload=self._callback_payload(nodes, query)) as event:
            selection = await adapter_support.aselect(self._model, query, texts, **self._selection_options(nodes))
            result = self._result(nodes, selection)
            event.on_end(payload={EventPayload.NODES: result})
        dispatcher.event(ReRankEndEvent(nodes=result))
        return result

    # ------------------------------------------------------------------------ helpers
    def _request(self, nodes: Sequence[NodeWithScore], query_bundle: QueryBundle | None) -> tuple[str, list[str]]:
        """The query and one text per node ("" for a node whose own text is blank, which is not scored)."""
        query = _query_string(query_bundle)
        if isinstance(nodes, (str, NodeWithScore)) or not isinstance(nodes, Sequence):
            raise TypeError(f"nodes must be a list of NodeWithScore, got {type(nodes).__name__}")
        for index, node in enumerate(nodes):
            if not isinstance(node, NodeWithScore):
                raise TypeError(f"nodes[{index}] must be a NodeWithScore, got {type(node).__name__}")
        return query, [_convert.passage_text(node, self.metadata_mode) for node in nodes]

    def _selection_options(self, nodes: Sequence[NodeWithScore]) -> dict[str, Any]:
        return {
            "top_n": self.top_n,
            "score_threshold": self.score_threshold,
            "alpha": self.alpha,
            "first_stage_scores": _convert.first_stage_scores(nodes),
            "batch_size": self.batch_size,
        }

    @staticmethod
    def _result(nodes: Sequence[NodeWithScore], selection: Selection) -> list[NodeWithScore]:
        return [
            _convert.scored_node(nodes[p.index], p.score, float(p.metadata.get(_convert.LLM_SCORE_KEY, p.score)))
            for p in selection.kept
        ]

    def _start_event(self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None) -> None:
        dispatcher.event(
            ReRankStartEvent(query=query_bundle, nodes=nodes, top_n=self.top_n, model_name=self.model_name)
        )

    def _callback_payload(self, nodes: list[NodeWithScore], query: str) -> dict[str, Any]:
        return {
            EventPayload.NODES: nodes,
            EventPayload.MODEL_NAME: self.model_name,
            EventPayload.QUERY_STR: query,
            EventPayload.TOP_K: self.top_n,
        }


def _query_string(query_bundle: QueryBundle | None) -> str:
    if query_bundle is None:
        raise ValueError("RankRAGReranker needs the query: pass query_bundle=QueryBundle(...) or query_str=...")
    query = getattr(query_bundle, "query_str", None)
    if query is None:
        raise ValueError("query_bundle has no query string; RankRAGReranker ranks nodes against query_str")
    return check_query(query, "query_bundle.query_str")

"""RankRAGReranker as a LlamaIndex node postprocessor: scores, fusion, copies, events, bad input."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import pytest
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode

from rankrag_llamaindex import RankRAGReranker

QUERY = "Who wrote Hamlet?"


class RecordingHandler(BaseEventHandler):
    events: list[Any] = []

    @classmethod
    def class_name(cls) -> str:
        return "RecordingHandler"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        self.events.append(event)


@pytest.fixture
def rerank_events():  # type: ignore[no-untyped-def]
    """A real event handler on LlamaIndex's root dispatcher; yields the rerank events it saw."""
    root = get_dispatcher()
    handler = RecordingHandler(events=[])
    root.add_event_handler(handler)
    yield lambda: [e for e in handler.events if isinstance(e, (ReRankStartEvent, ReRankEndEvent))]
    root.event_handlers.remove(handler)


def ids(nodes: list[NodeWithScore]) -> list[str]:
    return [node.node.node_id for node in nodes]


def test_nodes_come_back_in_model_order_with_scores_kept_in_metadata(reranker, embedded_model, hamlet_nodes):
    texts = [node.node.get_content(MetadataMode.EMBED) for node in hamlet_nodes]
    expected = embedded_model.rerank(QUERY, texts, first_stage_scores=[0.9, 0.5, 0.7])
    reranked = reranker.postprocess_nodes(hamlet_nodes, query_str=QUERY)
    assert ids(reranked) == [f"n{item.index}" for item in expected[:2]]
    assert reranked[0].node.node_id == "n1"  # the Hamlet passage, retrieved second
    for node, item in zip(reranked, expected):
        assert node.score == pytest.approx(item.score)
        assert node.node.metadata["llm_score"] == pytest.approx(item.metadata["llm_score"])
        assert node.node.metadata["retrieval_score"] == hamlet_nodes[item.index].score
        # the scores ride along without leaking into what LlamaIndex embeds or shows the answering LLM
        assert "llm_score" not in node.node.get_content(MetadataMode.LLM)
        assert "retrieval_score" not in node.node.get_content(MetadataMode.EMBED)


def test_input_nodes_are_not_mutated(reranker, hamlet_nodes):
    before = [node.model_dump() for node in hamlet_nodes]
    reranked = reranker.postprocess_nodes(hamlet_nodes, query_str=QUERY)
    assert [node.model_dump() for node in hamlet_nodes] == before
    assert all(out.node is not node.node for out in reranked for node in hamlet_nodes)


def test_fusion_uses_node_scores_or_falls_back_to_rank(embedded_model, hamlet_nodes):
    retriever_only = RankRAGReranker(model=embedded_model, top_n=3, alpha=0.0)
    assert ids(retriever_only.postprocess_nodes(hamlet_nodes, query_str=QUERY)) == ["n0", "n2", "n1"]
    hamlet_nodes[2].score = None  # one node without a score: the input order is the retrieval signal
    assert ids(retriever_only.postprocess_nodes(hamlet_nodes, query_str=QUERY)) == ["n0", "n1", "n2"]


def test_top_n_threshold_and_batch_size(embedded_model, reranker, hamlet_nodes):
    everything = RankRAGReranker(model=embedded_model, top_n=10, batch_size=1).postprocess_nodes(
        hamlet_nodes, query_str=QUERY
    )
    assert len(everything) == 3
    assert [n.score for n in everything] == sorted((n.score for n in everything), reverse=True)
    assert [n.score for n in everything[:2]] == pytest.approx(
        [n.score for n in reranker.postprocess_nodes(hamlet_nodes, query_str=QUERY)], abs=1e-4
    )
    cut = (everything[0].score + everything[1].score) / 2
    strict = RankRAGReranker(model=embedded_model, top_n=10, score_threshold=cut)
    assert ids(strict.postprocess_nodes(hamlet_nodes, query_str=QUERY)) == ids(everything[:1])


async def test_async_path_matches_sync(reranker, hamlet_nodes):
    sync = reranker.postprocess_nodes(hamlet_nodes, query_str=QUERY)
    asynchronous = await reranker.apostprocess_nodes(hamlet_nodes, query_bundle=QueryBundle(QUERY))
    assert ids(asynchronous) == ids(sync)
    assert [n.score for n in asynchronous] == pytest.approx([n.score for n in sync])


async def test_rerank_start_and_end_events_reach_a_real_handler(reranker, hamlet_nodes, rerank_events):
    result = reranker.postprocess_nodes(hamlet_nodes, query_str=QUERY)
    await reranker.apostprocess_nodes(hamlet_nodes, query_str=QUERY)
    events = rerank_events()
    assert [type(e) for e in events] == [ReRankStartEvent, ReRankEndEvent] * 2
    start, end = events[0], events[1]
    assert start.query.query_str == QUERY and start.top_n == 2 and start.model_name == reranker.model_name
    assert ids(start.nodes) == ["n0", "n1", "n2"]
    assert ids(end.nodes) == ids(result)
    # both events belong to the reranker's span, so tracing tools group them under it
    assert start.span_id.startswith("RankRAGReranker._postprocess_nodes")
    assert events[2].span_id.startswith("RankRAGReranker._apostprocess_nodes")


def test_no_nodes_gives_an_empty_list(reranker):
    assert reranker.postprocess_nodes([], query_str=QUERY) == []


@pytest.mark.parametrize("bundle", [None, QueryBundle(query_str=None), QueryBundle(""), QueryBundle("  \n")])  # type: ignore[arg-type]
def test_a_query_bundle_without_a_query_string_is_a_clear_error(reranker, hamlet_nodes, bundle):
    with pytest.raises(ValueError, match="query"):
        reranker.postprocess_nodes(hamlet_nodes, query_bundle=bundle)


def test_blank_nodes_never_take_a_slot(embedded_model, hamlet_nodes):
    """The blank-passage rule: nodes whose own text is empty or whitespace are not scored and never returned,
    also when the metadata shown to the model would make their content non-empty."""
    blank = [
        NodeWithScore(node=TextNode(text="", id_="blank"), score=1.0),
        NodeWithScore(node=TextNode(text="   ", id_="spaces", metadata={"title": "Hamlet"}), score=0.95),
        NodeWithScore(node=TextNode(text="\n\t", id_="unscored"), score=None),
    ]
    reranker = RankRAGReranker(model=embedded_model, top_n=10)
    reranked = reranker.postprocess_nodes(blank + hamlet_nodes, query_str=QUERY)
    alone = reranker.postprocess_nodes(hamlet_nodes, query_str=QUERY)
    assert ids(reranked) == ids(alone)  # the blanks' retrieval scores (or lack of one) change nothing
    assert [n.score for n in reranked] == pytest.approx([n.score for n in alone])
    assert reranker.postprocess_nodes(blank, query_str=QUERY) == []
    # with fewer non-blank nodes than top_n the free slots stay empty
    two = RankRAGReranker(model=embedded_model, top_n=3).postprocess_nodes(blank + hamlet_nodes[:2], query_str=QUERY)
    assert sorted(ids(two)) == ["n0", "n1"]


async def test_blank_nodes_never_take_a_slot_async(embedded_model, hamlet_nodes):
    blank = [NodeWithScore(node=TextNode(text=" ", id_="blank"), score=1.0)]
    reranker = RankRAGReranker(model=embedded_model, top_n=3)
    reranked = await reranker.apostprocess_nodes(blank + hamlet_nodes, query_str=QUERY)
    assert ids(reranked) == ids(reranker.postprocess_nodes(hamlet_nodes, query_str=QUERY))


def test_wrong_node_types_are_a_clear_error(reranker):
    with pytest.raises(TypeError, match=r"nodes\[0\] must be a NodeWithScore"):
        reranker.postprocess_nodes([TextNode(text="x")], query_str=QUERY)  # type: ignore[list-item]


def test_missing_llamaindex_names_the_extra_to_install(monkeypatch):
    for module in [m for m in sys.modules if m == "rankrag_llamaindex" or m.startswith("rankrag_llamaindex.")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "llama_index.core", None)
    with pytest.raises(ImportError, match=r'pip install "rankrag\[llamaindex\]"'):
        importlib.import_module("rankrag_llamaindex")

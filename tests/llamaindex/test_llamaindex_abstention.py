"""A threshold on the calibrated relevance in LlamaIndex: the reranker keeps nothing no one would call relevant, and
create_rankrag_query_engine answers "not found" without calling the LLM, streaming or not."""

from __future__ import annotations

import pytest
from llama_index.core import VectorStoreIndex
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from relevance_case import IRRELEVANT, QUESTION, RELEVANT, WITH_RELEVANT

from rankrag.defaults import NOT_FOUND_MESSAGE
from rankrag_llamaindex import RankRAGLLM, RankRAGReranker, create_rankrag_query_engine, embedded_embed_model


@pytest.mark.parametrize("first_stage", ["lexical", "dense"])
def test_a_threshold_keeps_nothing_irrelevant_and_keeps_the_relevant_node(embedded_model, first_stage: str) -> None:  # type: ignore[no-untyped-def]
    """Issue 41's case, as in the LangChain test: 0.5 keeps nothing irrelevant, then the relevant node alone (0.2 as
    the dense kind with no retriever scores)."""
    reranker = RankRAGReranker(model=embedded_model, top_n=3, score_threshold=0.5, first_stage=first_stage)
    nodes = [NodeWithScore(node=TextNode(text=t), score=None) for t in IRRELEVANT]
    assert reranker.postprocess_nodes(nodes, QueryBundle(QUESTION)) == []
    threshold = 0.5 if first_stage == "lexical" else 0.2
    reranker = RankRAGReranker(model=embedded_model, top_n=3, score_threshold=threshold, first_stage=first_stage)
    kept = reranker.postprocess_nodes(
        [NodeWithScore(node=TextNode(text=t), score=None) for t in WITH_RELEVANT], QueryBundle(QUESTION)
    )
    assert [n.node.get_content() for n in kept] == [RELEVANT] and kept[0].score >= threshold


@pytest.fixture(scope="module")
def index():  # type: ignore[no-untyped-def]
    from llama_index.core import Document

    return VectorStoreIndex.from_documents([Document(text=t) for t in IRRELEVANT], embed_model=embedded_embed_model())


def test_the_engine_abstains_without_calling_the_llm(index, embedded_model, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def no_generation(*args: object, **kwargs: object) -> object:
        raise AssertionError("the LLM was called")

    engine = create_rankrag_query_engine(index, model=embedded_model, score_threshold=0.5)
    monkeypatch.setattr(RankRAGLLM, "complete", no_generation)
    monkeypatch.setattr(RankRAGLLM, "chat", no_generation)
    response = engine.query(QUESTION)
    assert str(response) == NOT_FOUND_MESSAGE and response.metadata == {"abstained": True}
    assert response.source_nodes == []
    streaming = create_rankrag_query_engine(index, model=embedded_model, score_threshold=0.5, streaming=True)
    streamed = streaming.query(QUESTION)
    assert "".join(streamed.response_gen) == NOT_FOUND_MESSAGE and streamed.metadata == {"abstained": True}


async def test_the_async_engine_abstains_too(index, embedded_model) -> None:  # type: ignore[no-untyped-def]
    engine = create_rankrag_query_engine(index, model=embedded_model, score_threshold=0.5, not_found_message="Nope.")
    response = await engine.aquery(QUESTION)
    assert str(response) == "Nope." and response.metadata == {"abstained": True}


def test_the_engine_answers_from_a_relevant_node(embedded_model) -> None:  # type: ignore[no-untyped-def]
    from llama_index.core import Document

    index = VectorStoreIndex.from_documents(
        [Document(text=t) for t in [*IRRELEVANT, RELEVANT]], embed_model=embedded_embed_model()
    )
    engine = create_rankrag_query_engine(index, model=embedded_model, score_threshold=0.3)
    assert engine._node_postprocessors[0].first_stage == "dense"  # a vector index's retriever
    response = engine.query(QUESTION)
    assert response.metadata["abstained"] is False
    assert [n.node.get_content() for n in response.source_nodes] == [RELEVANT]
    assert "100" in str(response)


def test_a_blank_query_is_refused_before_retrieval(index, embedded_model) -> None:  # type: ignore[no-untyped-def]
    engine = create_rankrag_query_engine(index, model=embedded_model)
    for query in ("", "   "):
        with pytest.raises(ValueError, match="query"):
            engine.query(query)


def test_model_options_beside_a_ready_component_are_refused(index, embedded_model) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="ready reranker or llm"):
        create_rankrag_query_engine(index, reranker=RankRAGReranker(model=embedded_model), dtype="float32")

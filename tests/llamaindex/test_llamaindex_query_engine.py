"""End to end: a VectorStoreIndex over a real Chroma DB, reranked and answered by the one shared RankRAG model."""

from __future__ import annotations

import pytest
from llama_index.core import Settings

from rankrag.eval.metrics import normalize_answer
from rankrag_llamaindex import RankRAGLLM, RankRAGReranker

# Fixture questions whose answers are facts of one paragraph (not general knowledge) and that the embedded
# model answers from this pipeline: the oldest armed seal of Warsaw (1390), the first Warsaw President
# (Jan Andrzej Menich), the pope who was a native of Poland (John Paul II).
SEAL, PRESIDENT, POPE = "5733a45d4776f41900660f26", "57338255d058e614000b5c0e", "573330444776f41900660758"
SIMILARITY_TOP_K = 4
TOP_N = 2
# A fixed fusion weight with the retrieval score (not the shipped calibration), so the test does not move
# when the adapter is recalibrated.
ALPHA = 0.5


def assert_answered(question: dict, answer: str, source_nodes: list) -> None:
    # The gold answer, or a span of the kept passages: answered from the reranked sources, not made up.
    kept = normalize_answer(" ".join(node.node.get_content() for node in source_nodes))
    assert any(gold.lower() in answer.lower() for gold in question["answers"]) or (
        normalize_answer(answer) and normalize_answer(answer) in kept
    ), (answer, question["answers"])
    pids = [node.node.metadata["pid"] for node in source_nodes]
    assert question["gold_pid"] in pids
    assert len(pids) == TOP_N
    scores = [node.score for node in source_nodes]
    assert scores == sorted(scores, reverse=True)
    assert all("llm_score" in node.node.metadata and "retrieval_score" in node.node.metadata for node in source_nodes)


@pytest.fixture(scope="module")
def rankrag_components(embedded_model) -> tuple[RankRAGLLM, RankRAGReranker]:  # type: ignore[no-untyped-def]
    return RankRAGLLM(model=embedded_model, max_new_tokens=24), RankRAGReranker(
        model=embedded_model, top_n=TOP_N, alpha=ALPHA
    )


def test_query_engine_answers_from_the_reranked_corpus(squad_index, squad_questions, rankrag_components):
    llm, reranker = rankrag_components
    engine = squad_index.as_query_engine(llm=llm, node_postprocessors=[reranker], similarity_top_k=SIMILARITY_TOP_K)
    question = squad_questions[SEAL]
    response = engine.query(question["question"])
    assert_answered(question, str(response), response.source_nodes)


def test_streaming_query_engine_on_settings_llm(squad_index, squad_questions, rankrag_components, restore_settings):
    llm, reranker = rankrag_components
    Settings.llm = llm
    engine = squad_index.as_query_engine(
        streaming=True, node_postprocessors=[reranker], similarity_top_k=SIMILARITY_TOP_K
    )
    question = squad_questions[PRESIDENT]
    response = engine.query(question["question"])
    chunks = list(response.response_gen)
    assert len(chunks) > 1
    assert_answered(question, "".join(chunks), response.source_nodes)


async def test_async_query_engine(squad_index, squad_questions, rankrag_components):
    llm, reranker = rankrag_components
    engine = squad_index.as_query_engine(llm=llm, node_postprocessors=[reranker], similarity_top_k=SIMILARITY_TOP_K)
    question = squad_questions[POPE]
    response = await engine.aquery(question["question"])
    assert_answered(question, str(response), response.source_nodes)


def test_blank_nodes_never_reach_the_llm(embed_model, embedded_model, monkeypatch):
    """The blank-passage rule through a query engine: a real index holds blank nodes; the reranker leaves them
    out, so they are neither source nodes nor part of the prompt, even with top_n above the non-blank count."""
    from llama_index.core import VectorStoreIndex
    from llama_index.core.schema import TextNode

    texts = ["", "Nairobi is the capital and largest city of Kenya.", "   ", "Warsaw is the capital of Poland."]
    nodes = [TextNode(text=text, id_=f"t{i}") for i, text in enumerate(texts)]
    index = VectorStoreIndex(nodes, embed_model=embed_model)
    llm = RankRAGLLM(model=embedded_model, max_new_tokens=8)
    prompts: list[str] = []
    generate_ids = embedded_model.generate_ids

    def spy(prompt_ids, *options, **overrides):  # type: ignore[no-untyped-def]
        prompts.append(embedded_model.tokenizer.decode(prompt_ids))
        return generate_ids(prompt_ids, *options, **overrides)

    monkeypatch.setattr(embedded_model, "generate_ids", spy)
    reranker = RankRAGReranker(model=embedded_model, top_n=4)
    engine = index.as_query_engine(llm=llm, node_postprocessors=[reranker], similarity_top_k=len(texts))
    response = engine.query("What is the capital of Kenya?")
    assert sorted(node.node.node_id for node in response.source_nodes) == ["t1", "t3"]
    assert len(prompts) == 1 and "Nairobi" in prompts[0] and "Warsaw" in prompts[0]

"""The served backend on a real llama-cpp-python server running the embedded GGUF: scores agree with the
in-process model, generation, streaming, concurrency, a server killed mid-query, adapters on top."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from served_helpers import ALIAS, LlamaServer, start_llama_server

pytest.importorskip("llama_cpp", reason='llama-cpp-python is not installed (pip install "rankrag[server]")')

from rankrag import PromptTooLongError, RankRAGModel, ScoringOptions  # noqa: E402
from rankrag.served import (  # noqa: E402
    ServedModelNotFoundError,
    ServerDisconnectedError,
    ServerUnavailableError,
    TokenizerMismatchError,
)

pytestmark = pytest.mark.timeout(900)
logger = logging.getLogger(__name__)

QUESTION = "What covers most of the Amazon basin of South America?"


def ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=values.__getitem__)
    result = [0.0] * len(values)
    for rank, index in enumerate(order):
        result[index] = float(rank)
    return result


def spearman(a: list[float], b: list[float]) -> float:
    ra, rb = ranks(a), ranks(b)
    n = len(a)
    mean = (n - 1) / 2
    cov = sum((x - mean) * (y - mean) for x, y in zip(ra, rb))
    var = sum((x - mean) ** 2 for x in ra)
    return cov / var


@pytest.fixture(scope="module")
def passages(squad_passages: list[dict[str, Any]]) -> list[str]:
    """12 real passages from four articles (so some are relevant to the question and most are not)."""
    by_title: dict[str, list[str]] = {}
    for row in squad_passages:
        by_title.setdefault(row["title"], []).append(row["text"])
    titles = list(by_title)[:4]
    return [text for title in titles for text in by_title[title][:3]]


def test_served_scores_agree_with_in_process_scores(
    served: RankRAGModel, base_model: RankRAGModel, passages: list[str]
) -> None:
    assert served.info.flavor == "llama-cpp-python" and served.info.tokenizer_verified
    for normalization, compared in (("binary", passages), ("vocab", passages[:6])):
        local = base_model.score(QUESTION, compared, normalization=normalization)
        remote = served.score(QUESTION, compared, normalization=normalization)
        deltas = [abs(a - b) for a, b in zip(local, remote)]
        rho = spearman(local, remote)
        report = (
            f"{normalization}: max |dP| {max(deltas):.4f}, mean |dP| {sum(deltas) / len(deltas):.4f}, "
            f"Spearman {rho:.3f}, prompts={served.info.prompt_mode}, re-tokenized {served.stats['retokenized_prompts']}"
        )
        print(report)
        logger.warning(report)
        assert max(deltas) <= 0.06, report
        assert sum(deltas) / len(deltas) <= 0.03, report


def test_the_exported_rankrag_gguf_serves_the_tuned_scores(
    exported: Path, embedded_model: RankRAGModel, passages: list[str], tmp_path: Path
) -> None:
    """`rankrag export --gguf` output on llama.cpp's server scores like the in-process tuned model."""
    from rankrag.model.export import GGUF_PATH

    server = start_llama_server(tmp_path, model_path=exported / GGUF_PATH)
    try:
        with RankRAGModel.connect(server.url, model=ALIAS, context_window=2048) as tuned_served:
            local = embedded_model.score(QUESTION, passages[:8])
            remote = tuned_served.score(QUESTION, passages[:8])
    finally:
        server.stop()
    deltas = [abs(a - b) for a, b in zip(local, remote)]
    report = f"exported GGUF: max |dP| {max(deltas):.4f}, mean {sum(deltas) / len(deltas):.4f}, Spearman {spearman(local, remote):.3f}"
    print(report)
    logger.warning(report)
    assert max(deltas) <= 0.06 and sum(deltas) / len(deltas) <= 0.03, report


ROLE_QUESTIONS = [
    ("What is the capital of France?", ["Paris is the capital and largest city of France.", "Bananas are yellow."]),
    ("Who wrote Hamlet?", ["Hamlet is a tragedy written by William Shakespeare.", "The Seine flows through Paris."]),
    ("What do bees make?", ["Honey bees make honey from the nectar of flowers.", "Tokyo is the capital of Japan."]),
]


def test_an_exported_model_serves_each_role(
    exported_roles: Path, roles_model: RankRAGModel, passages: list[str], tmp_path: Path
) -> None:
    """`rankrag serve` on an export whose answerer has its own adapter serves two models (llama-cpp-python swaps
    them); connect() sends ranking requests to the ranker's and generation to the answerer's."""
    server = start_llama_server(tmp_path, model_path=exported_roles)
    try:
        with RankRAGModel.connect(server.url, model=ALIAS, calibration=exported_roles) as served:
            assert served.info.role_models == {"ranker": ALIAS, "answerer": "answerer"}
            local, remote = roles_model.score(QUESTION, passages[:8]), served.score(QUESTION, passages[:8])
            answers = [served.generate(q, p, max_new_tokens=16) for q, p in ROLE_QUESTIONS]
            with RankRAGModel.connect(server.url, model=ALIAS, role_models={"answerer": ALIAS}) as ranker_answers:
                by_ranker = [ranker_answers.generate(q, p, max_new_tokens=16) for q, p in ROLE_QUESTIONS]
    finally:
        server.stop()
    deltas = [abs(a - b) for a, b in zip(local, remote)]
    assert max(deltas) <= 0.06 and sum(deltas) / len(deltas) <= 0.03, deltas
    in_process = [roles_model.generate(q, p, max_new_tokens=16) for q, p in ROLE_QUESTIONS]
    print({"served answerer": answers, "in-process answerer": in_process, "served ranker": by_ranker})
    assert answers != by_ranker  # the answerer's requests reach another model than the ranker's
    assert sum(a == b for a, b in zip(answers, in_process)) >= 2, (answers, in_process)


def test_served_relevance_probabilities_match_in_process(
    served: RankRAGModel, base_model: RankRAGModel, passages: list[str]
) -> None:
    """The calibrated relevance probability comes out of a served model too: the same cascade, and probabilities
    that differ only as much as the served P(True) moves them."""
    local = {p.index: p for p in base_model.rerank(QUESTION, passages)}
    remote = served.rerank(QUESTION, passages)
    assert {p.index for p in remote if p.metadata["llm_score"] is not None} == {
        i for i, p in local.items() if p.metadata["llm_score"] is not None
    }
    gaps = [abs(local[p.index].score - p.score) for p in remote]
    print(f"served relevance probability: max |dP(relevant)| {max(gaps):.4f}")
    assert max(gaps) <= 0.06, gaps


def test_reading_a_missing_token_by_logit_bias_gives_the_same_scores(
    llama_server: LlamaServer, served: RankRAGModel, passages: list[str]
) -> None:
    assert served.info.logit_bias and served.info.raw_logprobs
    narrow = RankRAGModel.connect(llama_server.url, model=ALIAS, context_window=2048, top_logprobs=1)
    try:
        expected = served.score(QUESTION, passages[:2])
        assert narrow.score(QUESTION, passages[:2]) == pytest.approx(expected, abs=2e-3)
        assert narrow.stats["forced_lookups"] >= 1  # top-1 holds one of True / False, never both
    finally:
        narrow.close()


def test_rerank_and_answer(served: RankRAGModel, passages: list[str]) -> None:
    ranked = served.rerank(QUESTION, passages[:6], top_k=3)
    assert len(ranked) == 3 and ranked[0].score >= ranked[-1].score
    assert all(0.0 <= item.metadata["llm_score"] <= 1.0 for item in ranked)
    result = served.answer(
        "What is the capital of France?",
        ["Paris is the capital and largest city of France.", "Bananas are yellow."],
        top_k=1,
    )
    assert "paris" in result.answer.lower(), result


def test_generation_and_streaming(served: RankRAGModel, base_model: RankRAGModel) -> None:
    contexts = ["Paris is the capital and largest city of France."]
    text = served.generate("What is the capital of France?", contexts, max_new_tokens=16)
    assert "paris" in text.lower(), text
    ids = served.answer_prompt_ids("What is the capital of France?", contexts)
    assert ids == base_model.answer_prompt_ids("What is the capital of France?", contexts)
    chunks = list(served.stream_ids(ids, max_new_tokens=16))
    assert len(chunks) >= 1 and "".join(chunks) == text
    stopped = served.generate_ids(ids, max_new_tokens=16, stop=["is"])
    assert "is" not in stopped.text
    first = next(iter(served.stream_ids(ids, max_new_tokens=200)))  # stopping early cancels the request
    assert first


def test_too_long_prompts(llama_server: LlamaServer, served: RankRAGModel) -> None:
    long_contexts = [f"Passage number {i}. " + "word " * 600 for i in range(6)]
    with pytest.raises(
        PromptTooLongError, match=rf"context window of 2048 tokens of the model server at {llama_server.url}"
    ):
        served.generate("What?", long_contexts)
    unknown = RankRAGModel.connect(llama_server.url, model=ALIAS)  # the server does not report its window
    try:
        with pytest.raises(
            PromptTooLongError, match=rf"{llama_server.url}/v1/completions rejected the prompt as too long"
        ):
            unknown.generate("What?", long_contexts)
        assert unknown.context_window == 2048  # learned from the error
    finally:
        unknown.close()


async def test_concurrent_async_queries_equal_sequential_results(
    served: RankRAGModel, squad_passages: list[dict[str, Any]]
) -> None:
    rows = squad_passages[:12]
    queries = [
        (f"What is said about {row['title'].replace('_', ' ')}?", [row["text"][:120], rows[(i + 5) % 12]["text"][:120]])
        for i, row in enumerate(rows)
    ]
    sequential = [served.score(q, ps) for q, ps in queries]
    started = time.monotonic()
    concurrent = await asyncio.gather(*(served.ascore(q, ps) for q, ps in queries))
    print(f"12 concurrent queries (24 passages): {time.monotonic() - started:.1f} s")
    for a, b in zip(sequential, concurrent):
        assert b == pytest.approx(a, abs=2e-3)


def test_strict_tokens_refuses_a_text_only_server(llama_server: LlamaServer) -> None:
    strict = RankRAGModel.connect(llama_server.url, model=ALIAS, strict_tokens=True)
    try:
        assert strict.info.prompt_mode == "text"
        with pytest.raises(TokenizerMismatchError, match="takes prompts as text only"):
            strict.score(QUESTION, ["The Amazon rainforest covers most of the Amazon basin."])
    finally:
        strict.close()


def test_wrong_model_name_on_a_real_server(llama_server: LlamaServer) -> None:
    with pytest.raises(ServedModelNotFoundError, match=r"does not serve a model named 'smollm3'; it serves 'smollm2'"):
        RankRAGModel.connect(llama_server.url, model="smollm3")


def test_a_server_killed_mid_query_fails_fast_and_clearly(tmp_path: Path) -> None:
    server = start_llama_server(tmp_path)
    try:
        model = RankRAGModel.connect(server.url, model=ALIAS, timeout=30, max_attempts=3)
        ids = model.answer_prompt_ids("Write a long story about the sea.", [])
        stream = model.stream_ids(ids, max_new_tokens=1500)
        assert next(stream)
        started = time.monotonic()
        server.kill()  # SIGKILL while it is generating
        with pytest.raises(ServerDisconnectedError, match=rf"{server.url}/v1/completions"):
            for _ in stream:
                pass
        with pytest.raises(ServerUnavailableError, match=rf"cannot reach the model server at {server.url}"):
            model.score(QUESTION, ["The Amazon rainforest covers most of the Amazon basin."])
        assert time.monotonic() - started < 30
        model.close()
    finally:
        server.kill()


def test_langchain_reranker_on_a_served_model(served: RankRAGModel) -> None:
    pytest.importorskip("langchain_core")
    from langchain_core.documents import Document

    from rankrag_langchain import RankRAGReranker

    texts = ["Warsaw is the capital of Poland.", "Nairobi is the capital and largest city of Kenya."]
    reranker = RankRAGReranker(model=served, top_n=1)
    result = reranker.compress_documents([Document(page_content=t) for t in texts], "What is the capital of Kenya?")
    expected = served.rerank("What is the capital of Kenya?", texts, top_k=1)
    assert [d.page_content for d in result] == [expected[0].text]
    assert result[0].metadata["llm_score"] == pytest.approx(expected[0].metadata["llm_score"], abs=2e-3)


def test_llamaindex_reranker_on_a_served_model(served: RankRAGModel) -> None:
    pytest.importorskip("llama_index.core")
    from llama_index.core.schema import NodeWithScore, TextNode

    from rankrag_llamaindex import RankRAGReranker

    texts = ["Warsaw is the capital of Poland.", "Nairobi is the capital and largest city of Kenya."]
    nodes = [NodeWithScore(node=TextNode(text=t, id_=f"n{i}"), score=1.0) for i, t in enumerate(texts)]
    reranked = RankRAGReranker(model=served, top_n=1).postprocess_nodes(
        nodes, query_str="What is the capital of Kenya?"
    )
    expected = served.rerank("What is the capital of Kenya?", texts, top_k=1, first_stage_scores=[1.0, 1.0])
    assert [n.node.node_id for n in reranked] == [f"n{expected[0].index}"]


def test_with_options_and_scoring_options(served: RankRAGModel, passages: list[str]) -> None:
    short = served.with_options(scoring_options=ScoringOptions(max_passage_tokens=32))
    assert short.client is served.client
    assert len(short.score(QUESTION, passages[:2])) == 2


def test_langchain_and_llamaindex_llms_on_a_served_model(served: RankRAGModel) -> None:
    pytest.importorskip("langchain_core")
    pytest.importorskip("llama_index.core")
    from rankrag_langchain import RankRAGLLM as LangChainLLM
    from rankrag_llamaindex import RankRAGLLM as LlamaIndexLLM

    chat = LangChainLLM(model=served, max_tokens=12)
    assert "paris" in chat.invoke("What is the capital of France? Answer in one word.").content.lower()
    assert "".join(chunk.content for chunk in chat.stream("What is the capital of France? Answer in one word."))
    llm = LlamaIndexLLM(model=served, max_new_tokens=12)
    assert llm.metadata.context_window == 2048
    assert llm.complete("What is the capital of France? Answer in one word.").text

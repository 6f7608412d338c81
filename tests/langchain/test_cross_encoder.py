"""RankRAGCrossEncoder on the embedded model: core scores per pair, grouping by query, and LangChain's own
CrossEncoderReranker in a ContextualCompressionRetriever over a real MiniLM vector store."""

from __future__ import annotations

import re
from typing import Any

import pytest
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_classic.retrievers.document_compressors import CrossEncoderReranker
from langchain_classic.retrievers.document_compressors.cross_encoder import BaseCrossEncoder as ClassicCrossEncoder
from langchain_core.cross_encoders import BaseCrossEncoder
from langchain_core.documents import Document
from langchain_core.vectorstores import InMemoryVectorStore

from rankrag_langchain import RankRAGCrossEncoder, RankRAGLLM, RankRAGReranker

# Two SQuAD questions and fixture paragraphs (cut to two sentences: cheap to score). The assertions compare
# with the core's scores, not with the gold answers: the adapter must score exactly as the core does.
KENYA = "What is the capital of Kenya?"
RAILWAY = "On what date did the first railway trip in the world occur?"
PIDS = ["Kenya#0", "Kenya#1", "Warsaw#2", "Steam_engine#2", "Amazon_rainforest#0"]
RETRIEVE = 4
TOP_N = 2


def two_sentences(text: str) -> str:
    return " ".join(re.split(r"(?<=[.!?])\s+", text)[:2])


@pytest.fixture(scope="module")
def passages(squad_passages: list[dict[str, Any]]) -> dict[str, str]:
    by_pid = {p["pid"]: p["text"] for p in squad_passages}
    return {pid: two_sentences(by_pid[pid]) for pid in PIDS}


@pytest.fixture(scope="module")
def cross_encoder(embedded_model) -> RankRAGCrossEncoder:  # type: ignore[no-untyped-def]
    return RankRAGCrossEncoder(model=embedded_model)


@pytest.fixture(scope="module")
def retriever(embeddings, passages):  # type: ignore[no-untyped-def]
    """A real vector-store retriever: the embedded MiniLM over the short SQuAD paragraphs, in memory."""
    store = InMemoryVectorStore(embeddings)
    store.add_documents([Document(page_content=text, metadata={"pid": pid}) for pid, text in passages.items()])
    return store.as_retriever(search_kwargs={"k": RETRIEVE})


def test_is_a_langchain_cross_encoder(cross_encoder) -> None:  # type: ignore[no-untyped-def]
    assert isinstance(cross_encoder, BaseCrossEncoder)
    assert ClassicCrossEncoder is BaseCrossEncoder  # langchain_classic re-exports the core interface


def test_scores_are_the_core_scores(cross_encoder, embedded_model, passages) -> None:  # type: ignore[no-untyped-def]
    texts = list(passages.values())
    scores = cross_encoder.score([(KENYA, text) for text in texts])
    assert scores == pytest.approx(embedded_model.score(KENYA, texts), abs=1e-6)
    assert all(isinstance(s, float) and 0.0 <= s <= 1.0 for s in scores)


def test_several_queries_in_one_call(cross_encoder, embedded_model, passages, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    kenya, warsaw, steam = passages["Kenya#0"], passages["Warsaw#2"], passages["Steam_engine#2"]
    pairs = [(KENYA, kenya), (RAILWAY, steam), (KENYA, warsaw), (RAILWAY, kenya), (KENYA, steam)]
    expected = dict(
        zip([(KENYA, p) for p in (kenya, warsaw, steam)], embedded_model.score(KENYA, [kenya, warsaw, steam]))
    )
    expected.update(zip([(RAILWAY, p) for p in (steam, kenya)], embedded_model.score(RAILWAY, [steam, kenya])))

    calls: list[tuple[str, list[str]]] = []
    core_score = embedded_model.score

    def spy(query: str, texts: list[str], **options: Any) -> list[float]:
        calls.append((query, list(texts)))
        return core_score(query, texts, **options)

    monkeypatch.setattr(embedded_model, "score", spy)
    scores = cross_encoder.score(pairs)
    assert scores == pytest.approx([expected[pair] for pair in pairs], abs=1e-6)
    # one core call per query (its passages share the prompt prefix), passages in input order
    assert calls == [(KENYA, [kenya, warsaw, steam]), (RAILWAY, [steam, kenya])]


def test_no_pairs_score_nothing(cross_encoder, embedded_model, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(embedded_model, "score", lambda *args, **kwargs: pytest.fail("no pairs, no core call"))
    assert cross_encoder.score([]) == []


def test_blank_passages_score_zero_without_the_model(cross_encoder, embedded_model, passages, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    kenya, warsaw = passages["Kenya#0"], passages["Warsaw#2"]
    expected = embedded_model.score(KENYA, [kenya, warsaw])
    calls: list[list[str]] = []
    core_score = embedded_model.score

    def spy(query: str, texts: list[str], **options: Any) -> list[float]:
        calls.append(list(texts))
        return core_score(query, texts, **options)

    monkeypatch.setattr(embedded_model, "score", spy)
    scores = cross_encoder.score([(KENYA, ""), (KENYA, kenya), (KENYA, " \n"), (KENYA, warsaw)])
    assert scores[0] == 0.0 and scores[2] == 0.0
    assert [scores[1], scores[3]] == pytest.approx(expected, abs=1e-6)
    assert calls == [[kenya, warsaw]]  # the blank passages never reach the model
    assert cross_encoder.score([(KENYA, ""), (RAILWAY, "  ")]) == [0.0, 0.0]
    assert len(calls) == 1


def test_blank_documents_rank_last_in_cross_encoder_reranker(cross_encoder, passages) -> None:  # type: ignore[no-untyped-def]
    compressor = CrossEncoderReranker(model=cross_encoder, top_n=TOP_N)
    docs = [Document(page_content=""), Document(page_content=passages["Warsaw#2"]), Document(page_content=" ")]
    docs.append(Document(page_content=passages["Kenya#0"]))
    kept = compressor.compress_documents(docs, KENYA)
    assert [d.page_content for d in kept] == [passages["Kenya#0"], passages["Warsaw#2"]]


def test_bad_pairs_are_errors(cross_encoder) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TypeError, match="not a single string"):
        cross_encoder.score("What is the capital of Kenya?")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"text_pairs\[1\] must be a \(query, passage\) pair"):
        cross_encoder.score([(KENYA, "Nairobi."), (KENYA,)])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="query is empty"):
        cross_encoder.score([("  ", "Nairobi.")])


def test_contextual_compression_retriever(cross_encoder, retriever, embedded_model) -> None:  # type: ignore[no-untyped-def]
    compression = ContextualCompressionRetriever(
        base_compressor=CrossEncoderReranker(model=cross_encoder, top_n=TOP_N), base_retriever=retriever
    )
    retrieved = retriever.invoke(KENYA)
    assert len(retrieved) == RETRIEVE
    core = embedded_model.score(KENYA, [d.page_content for d in retrieved])
    best_first = sorted(zip(core, retrieved), key=lambda item: item[0], reverse=True)[:TOP_N]

    result = compression.invoke(KENYA)
    assert [d.metadata["pid"] for d in result] == [d.metadata["pid"] for _, d in best_first]
    scores = cross_encoder.score([(KENYA, d.page_content) for d in result])
    # scored here in a batch of TOP_N, above in a batch of RETRIEVE: float32 batch drift (bound 1e-5, docs/reliability.md)
    assert scores == pytest.approx([s for s, _ in best_first], abs=1e-5)
    assert scores == sorted(scores, reverse=True)


def test_shares_the_one_model(embedded_model) -> None:  # type: ignore[no-untyped-def]
    reranker = RankRAGReranker(model=embedded_model)
    cross_encoder = RankRAGCrossEncoder(model=reranker.model)
    llm = RankRAGLLM(model=cross_encoder.model)
    assert cross_encoder.model is reranker.model is llm.model is embedded_model
    assert RankRAGCrossEncoder().model is embedded_model  # the same load spec gives the registry's instance
    with pytest.raises(ValueError, match="loaded RankRAGModel together with load options"):
        RankRAGCrossEncoder(model=embedded_model, dtype="float32")
    with pytest.raises(ValueError, match="batch_size"):
        RankRAGCrossEncoder(model=embedded_model, batch_size=0)

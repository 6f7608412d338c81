"""End to end: a real Chroma store (persistent client in a temp dir), MiniLM embeddings, the RankRAG chain."""

from __future__ import annotations

import asyncio
import inspect

import pytest
from langchain_core.runnables import Runnable
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler

from rankrag.eval.metrics import normalize_answer
from rankrag_langchain import RankRAGLLM, RankRAGReranker, create_rankrag_chain

# Fixture questions the embedded model answers right from the fixture corpus with its default generator (the
# base weights; retrieve 5, keep 3): 8 of the first 20 in file order, 2026-12-05 (the adapter generating: 17 of
# 20 on 2026-12-02, by this check's gold-or-span-of-the-kept-passages rule). Both stream in several chunks.
ANSWERED = ["571127a5a58dae1900cd6cc5", "571163172419e314009555eb"]
RETRIEVE = 5
KEEP = 3


@pytest.fixture(scope="module")
def chain(squad_store, embedded_model) -> Runnable:  # type: ignore[no-untyped-def]
    reranker = RankRAGReranker(model=embedded_model, top_n=RETRIEVE)
    llm = RankRAGLLM(model=embedded_model, max_tokens=24)
    return create_rankrag_chain(
        squad_store.as_retriever(search_kwargs={"k": RETRIEVE}), reranker=reranker, llm=llm, top_k=KEEP
    )


def assert_answered(output: dict, question: dict) -> None:  # type: ignore[type-arg]
    assert set(output) == {"answer", "source_documents", "abstained"} and output["abstained"] is False
    answer = output["answer"]
    documents = output["source_documents"]
    # The gold answer, or a span of the kept passages: answered from the reranked sources, not made up.
    kept = normalize_answer(" ".join(d.page_content for d in documents))
    assert any(gold.lower() in answer.lower() for gold in question["answers"]) or (
        normalize_answer(answer) and normalize_answer(answer) in kept
    ), (answer, question["answers"])
    assert len(documents) == KEEP
    assert question["gold_pid"] in [d.metadata["pid"] for d in documents]
    scores = [d.metadata["relevance_score"] for d in documents]
    assert scores == sorted(scores, reverse=True)
    assert all("llm_score" in d.metadata and 0 <= d.metadata["retrieval_rank"] < RETRIEVE for d in documents)


def walk(run):  # type: ignore[no-untyped-def]
    yield run
    for child in run.child_runs:
        yield from walk(child)


@pytest.mark.parametrize("question_id", ANSWERED)
def test_chain_answers_from_the_corpus(chain, squad_questions, question_id: str) -> None:  # type: ignore[no-untyped-def]
    question = squad_questions[question_id]
    collector = RunCollectorCallbackHandler()
    output = chain.invoke(question["question"], config={"callbacks": [collector]})
    assert_answered(output, question)
    # the trace holds the rerank step with every retrieved document's scores
    (root,) = collector.traced_runs
    assert root.name == "RankRAGChain"
    (rerank_run,) = [run for run in walk(root) if run.name == "RankRAGReranker"]
    assert len(rerank_run.outputs["scores"]) == RETRIEVE
    top = [s["relevance_score"] for s in rerank_run.outputs["scores"][:KEEP]]
    assert top == [d.metadata["relevance_score"] for d in output["source_documents"]]


def test_chain_streams_the_answer(chain, squad_questions) -> None:  # type: ignore[no-untyped-def]
    question = squad_questions[ANSWERED[0]]
    chunks = list(chain.stream({"question": question["question"]}))
    assert list(chunks[0]) == ["source_documents", "abstained"], "the sources come first"
    assert chunks[0]["abstained"] is False
    answer_chunks = [c["answer"] for c in chunks[1:]]
    assert len(answer_chunks) >= 2 and all(isinstance(c, str) for c in answer_chunks)
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged = merged + chunk
    assert_answered(dict(merged), question)


def test_chain_async_forms(chain, squad_questions) -> None:  # type: ignore[no-untyped-def]
    question = squad_questions[ANSWERED[1]]

    async def run() -> tuple[dict, list[dict]]:  # type: ignore[type-arg]
        invoked = await chain.ainvoke({"query": question["question"]})
        streamed = [chunk async for chunk in chain.pick("answer").astream(question["question"])]
        return invoked, streamed

    invoked, streamed = asyncio.run(run())
    assert_answered(invoked, question)
    assert len(streamed) >= 2 and "".join(streamed) == invoked["answer"]


def test_chain_keeps_the_papers_k_by_default() -> None:
    assert inspect.signature(create_rankrag_chain).parameters["top_k"].default == 5


def test_chain_bad_input(squad_store, embedded_model) -> None:  # type: ignore[no-untyped-def]
    chain = create_rankrag_chain(squad_store.as_retriever(), model=embedded_model, top_k=2)
    with pytest.raises(ValueError, match="question is empty or only whitespace"):
        chain.invoke("   ")
    with pytest.raises(ValueError, match="needs one of the keys"):
        chain.invoke({"text": "What is Kenya?"})
    with pytest.raises(ValueError, match="top_k must be a positive integer"):
        create_rankrag_chain(squad_store.as_retriever(), model=embedded_model, top_k=0)
    with pytest.raises(ValueError, match="already has a model"):
        create_rankrag_chain(
            squad_store.as_retriever(), reranker=RankRAGReranker(model=embedded_model), model_name="other"
        )


def test_blank_documents_never_reach_the_generator(embeddings, embedded_model, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The blank-passage rule through the whole chain: a real retriever returns blank documents; they are
    neither kept as sources nor handed to the generator, even with top_k above the non-blank count."""
    from langchain_core.documents import Document
    from langchain_core.vectorstores import InMemoryVectorStore

    texts = ["", "Nairobi is the capital and largest city of Kenya.", "   ", "Warsaw is the capital of Poland.", "\n"]
    store = InMemoryVectorStore(embeddings)
    store.add_documents([Document(page_content=text, metadata={"n": i}) for i, text in enumerate(texts)])
    chain = create_rankrag_chain(store.as_retriever(search_kwargs={"k": len(texts)}), model=embedded_model, top_k=4)

    contexts_seen: list[list[str]] = []
    stream = embedded_model.stream

    def spy(question: str, contexts: list[str], *options, **overrides):  # type: ignore[no-untyped-def]
        contexts_seen.append(list(contexts))
        return stream(question, contexts, *options, **overrides)

    monkeypatch.setattr(embedded_model, "stream", spy)
    output = chain.invoke("What is the capital of Kenya?")
    assert sorted(d.metadata["n"] for d in output["source_documents"]) == [1, 3]
    assert contexts_seen == [[d.page_content for d in output["source_documents"]]]
    assert all(context.strip() for context in contexts_seen[0])

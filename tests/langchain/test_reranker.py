"""RankRAGReranker on the embedded model: core scores, copies not mutations, options, bad input, callbacks."""

from __future__ import annotations

import asyncio
import copy

import pytest
from langchain_core.documents import Document
from langchain_core.documents.compressor import BaseDocumentCompressor
from langchain_core.runnables import Runnable, RunnablePassthrough
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler
from langchain_core.vectorstores import InMemoryVectorStore

from rankrag_langchain import RankRAGReranker

QUERY = "What is the capital of Kenya?"
TEXTS = [
    "The steam engine converts heat into mechanical work using steam.",
    "Nairobi is the capital and largest city of Kenya.",
    "The Amazon rainforest covers most of the Amazon basin of South America.",
    "Warsaw is the capital of Poland.",
]


def documents() -> list[Document]:
    return [Document(page_content=text, metadata={"source": f"doc{i}"}, id=f"id{i}") for i, text in enumerate(TEXTS)]


def test_order_and_scores_come_from_the_core(reranker, embedded_model) -> None:  # type: ignore[no-untyped-def]
    full = reranker.model_copy(update={"top_n": None})
    result = full.compress_documents(documents(), QUERY)
    expected = embedded_model.rerank(QUERY, TEXTS)
    assert [d.metadata["retrieval_rank"] for d in result] == [p.index for p in expected]
    assert [d.metadata["relevance_score"] for d in result] == pytest.approx([p.score for p in expected])
    assert [d.metadata["llm_score"] for d in result] == pytest.approx([p.metadata["llm_score"] for p in expected])
    assert [d.page_content for d in result] == [TEXTS[p.index] for p in expected]
    assert [d.id for d in result] == [f"id{p.index}" for p in expected]
    assert all(d.metadata["source"] == f"doc{d.metadata['retrieval_rank']}" for d in result)
    scores = [d.metadata["relevance_score"] for d in result]
    assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)


def test_inputs_are_not_mutated(reranker) -> None:  # type: ignore[no-untyped-def]
    inputs = documents()
    before = copy.deepcopy(inputs)
    result = reranker.compress_documents(inputs, QUERY)
    assert inputs == before
    assert all(out is not doc and out.metadata is not doc.metadata for out in result for doc in inputs)


def test_top_n_and_score_threshold(reranker) -> None:  # type: ignore[no-untyped-def]
    ranked = reranker.model_copy(update={"top_n": None}).compress_documents(documents(), QUERY)
    assert len(ranked) == len(TEXTS)
    assert reranker.model_copy(update={"top_n": 2}).compress_documents(documents(), QUERY) == ranked[:2]
    middle = ranked[1].metadata["relevance_score"]
    thresholded = reranker.model_copy(update={"top_n": None, "score_threshold": middle}).compress_documents(
        documents(), QUERY
    )
    assert thresholded == [d for d in ranked if d.metadata["relevance_score"] >= middle]
    assert thresholded[:2] == ranked[:2]
    above_all = reranker.model_copy(update={"score_threshold": 1.01}).compress_documents(documents(), QUERY)
    assert above_all == []


def test_batch_size_does_not_change_scores(reranker) -> None:  # type: ignore[no-untyped-def]
    one = reranker.model_copy(update={"batch_size": 1, "top_n": None}).compress_documents(documents(), QUERY)
    many = reranker.model_copy(update={"batch_size": 4, "top_n": None}).compress_documents(documents(), QUERY)
    assert [d.metadata["retrieval_rank"] for d in one] == [d.metadata["retrieval_rank"] for d in many]
    assert [d.metadata["llm_score"] for d in one] == pytest.approx([d.metadata["llm_score"] for d in many], abs=1e-4)


def test_fusion_uses_the_retrieval_score_in_metadata(reranker, embedded_model) -> None:  # type: ignore[no-untyped-def]
    retrieval_scores = [0.1, 0.9, 0.4, 0.7]
    docs = [Document(page_content=t, metadata={"score": s}) for t, s in zip(TEXTS, retrieval_scores)]
    fused = reranker.model_copy(update={"alpha": 0.5, "top_n": None}).compress_documents(docs, QUERY)
    expected = embedded_model.rerank(QUERY, TEXTS, first_stage_scores=retrieval_scores, alpha=0.5)
    assert [d.metadata["retrieval_rank"] for d in fused] == [p.index for p in expected]
    assert [d.metadata["relevance_score"] for d in fused] == pytest.approx([p.score for p in expected])
    # alpha = 0 keeps the retriever's order, which here is by the metadata score, not by position
    retriever_only = reranker.model_copy(update={"alpha": 0.0, "top_n": None}).compress_documents(docs, QUERY)
    assert [d.metadata["retrieval_rank"] for d in retriever_only] == [1, 3, 2, 0]


def test_fusion_falls_back_on_the_retrieval_rank(reranker, embedded_model) -> None:  # type: ignore[no-untyped-def]
    retriever_only = reranker.model_copy(update={"alpha": 0.0, "top_n": None}).compress_documents(documents(), QUERY)
    assert [d.metadata["retrieval_rank"] for d in retriever_only] == [0, 1, 2, 3]
    fused = reranker.model_copy(update={"alpha": 0.3, "top_n": None}).compress_documents(documents(), QUERY)
    expected = embedded_model.rerank(QUERY, TEXTS, alpha=0.3)
    assert [d.metadata["relevance_score"] for d in fused] == pytest.approx([p.score for p in expected])


def test_explicit_score_key_must_be_present(reranker) -> None:  # type: ignore[no-untyped-def]
    docs = [Document(page_content=t, metadata={"bm25": float(i)}) for i, t in enumerate(TEXTS)]
    keyed = reranker.model_copy(update={"alpha": 0.0, "top_n": None, "score_key": "bm25"})
    assert [d.metadata["retrieval_rank"] for d in keyed.compress_documents(docs, QUERY)] == [3, 2, 1, 0]
    docs[2].metadata.pop("bm25")
    with pytest.raises(ValueError, match=r"documents\[2\]\.metadata\['bm25'\]"):
        keyed.compress_documents(docs, QUERY)


def test_empty_document_list_gives_empty_list(reranker) -> None:  # type: ignore[no-untyped-def]
    assert reranker.compress_documents([], QUERY) == []
    assert asyncio.run(reranker.acompress_documents([], QUERY)) == []


def test_blank_documents_never_take_a_slot(reranker) -> None:  # type: ignore[no-untyped-def]
    """The blank-passage rule: empty or whitespace-only documents are not scored and never returned."""
    empty = Document(page_content="", metadata={"source": "empty"})
    blank = Document(page_content="  \n ")
    bare = Document.model_construct(page_content=TEXTS[1], metadata=None, id=None)  # metadata unset entirely
    result = reranker.model_copy(update={"top_n": None}).compress_documents([empty, bare, blank], QUERY)
    assert [d.metadata["retrieval_rank"] for d in result] == [1]
    assert result[0].page_content == TEXTS[1] and result[0].metadata["relevance_score"] > 0
    assert reranker.compress_documents([empty], QUERY) == []
    assert asyncio.run(reranker.acompress_documents([empty, blank], QUERY)) == []
    # with fewer non-blank documents than top_n, the free slots stay empty; ranks still count the blanks
    mixed = [empty, *documents()[:2], blank]
    kept = reranker.model_copy(update={"top_n": 3}).compress_documents(mixed, QUERY)
    assert sorted(d.metadata["retrieval_rank"] for d in kept) == [1, 2]
    assert all(d.page_content.strip() for d in kept)
    assert asyncio.run(reranker.acompress_documents(mixed, QUERY)) == reranker.compress_documents(mixed, QUERY)
    # a blank document needs no retrieval score for the others' scores to be used
    scored = [Document(page_content=d.page_content, metadata={"score": s}) for d, s in zip(documents(), [1, 4, 2, 3])]
    retriever_only = reranker.model_copy(update={"alpha": 0.0, "top_n": None})
    ranks = [d.metadata["retrieval_rank"] for d in retriever_only.compress_documents([*scored, blank], QUERY)]
    assert ranks == [1, 3, 2, 0]


@pytest.mark.parametrize("query", ["", "   ", "\n\t "])
def test_whitespace_query_is_a_clear_error(reranker, query: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="query is empty or only whitespace"):
        reranker.compress_documents(documents(), query)
    with pytest.raises(ValueError, match="query is empty or only whitespace"):
        asyncio.run(reranker.acompress_documents(documents(), query))


def test_top_n_defaults_to_the_papers_k(embedded_model) -> None:  # type: ignore[no-untyped-def]
    assert RankRAGReranker(model=embedded_model).top_n == 5  # k = 5 contexts, as in the rest of the project


def test_wrong_types_are_clear_errors(reranker) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TypeError, match=r"documents\[1\] must be a langchain_core Document, got str"):
        reranker.compress_documents([documents()[0], "plain text"], QUERY)
    with pytest.raises(TypeError, match="not a single item"):
        reranker.compress_documents(documents()[0], QUERY)
    with pytest.raises(ValueError, match="top_n"):
        RankRAGReranker(model=reranker.model, top_n=0)
    with pytest.raises(ValueError, match="top_k"):  # a misspelt option is an error, not silently ignored
        RankRAGReranker(model=reranker.model, top_k=3)


async def test_async_is_native_and_leaves_the_loop_free(reranker) -> None:  # type: ignore[no-untyped-def]
    assert type(reranker).acompress_documents is not BaseDocumentCompressor.acompress_documents
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0.005)

    task = asyncio.create_task(ticker())
    result = await reranker.acompress_documents(documents(), QUERY)
    done.set()
    await task
    assert ticks >= 3, "the event loop was blocked while scoring"
    assert result == reranker.compress_documents(documents(), QUERY)


def test_rerank_shows_in_callbacks_with_scores(reranker) -> None:  # type: ignore[no-untyped-def]
    collector = RunCollectorCallbackHandler()
    result = reranker.compress_documents(documents(), QUERY, callbacks=[collector])
    (run,) = collector.traced_runs
    assert run.name == "RankRAGReranker" and run.error is None
    assert run.inputs["query"] == QUERY
    scores = run.outputs["scores"]
    assert [s["retrieval_rank"] for s in scores][: len(result)] == [d.metadata["retrieval_rank"] for d in result]
    assert sorted(s["retrieval_rank"] for s in scores) == list(range(len(TEXTS)))  # dropped documents too
    assert [s["relevance_score"] for s in scores][: len(result)] == [d.metadata["relevance_score"] for d in result]


async def test_async_rerank_shows_in_callbacks(reranker) -> None:  # type: ignore[no-untyped-def]
    collector = RunCollectorCallbackHandler()
    result = await reranker.acompress_documents(documents(), QUERY, callbacks=[collector])
    (run,) = collector.traced_runs
    assert run.name == "RankRAGReranker"
    assert run.outputs["documents"] == result


def test_failure_is_reported_to_callbacks(reranker) -> None:  # type: ignore[no-untyped-def]
    collector = RunCollectorCallbackHandler()
    docs = [Document(page_content=t, metadata={"bm25": "high"}) for t in TEXTS]
    with pytest.raises(ValueError, match="bm25"):
        reranker.model_copy(update={"score_key": "bm25"}).compress_documents(docs, QUERY, callbacks=[collector])
    (run,) = collector.traced_runs
    assert run.error and "bm25" in run.error


def test_inside_contextual_compression_retriever(reranker) -> None:  # type: ignore[no-untyped-def]
    from langchain_classic.retrievers import ContextualCompressionRetriever
    from langchain_core.retrievers import BaseRetriever

    class FixedRetriever(BaseRetriever):
        def _get_relevant_documents(self, query: str, *, run_manager) -> list[Document]:  # type: ignore[no-untyped-def]
            return documents()

    retriever = ContextualCompressionRetriever(base_compressor=reranker, base_retriever=FixedRetriever())
    collector = RunCollectorCallbackHandler()
    result = retriever.invoke(QUERY, config={"callbacks": [collector]})
    assert result == reranker.compress_documents(documents(), QUERY)
    assert asyncio.run(retriever.ainvoke(QUERY)) == result
    (outer,) = collector.traced_runs
    assert [child.name for child in outer.child_runs] == ["FixedRetriever", "RankRAGReranker"]
    assert outer.child_runs[1].outputs["documents"] == result


# ------------------------------------------------------------------------------------- the pipe
@pytest.fixture(scope="module")
def retriever(embeddings):  # type: ignore[no-untyped-def]
    """A real vector-store retriever over TEXTS (the embedded MiniLM, in memory), returning all of them."""
    store = InMemoryVectorStore(embeddings)
    store.add_documents(documents())
    return store.as_retriever(search_kwargs={"k": len(TEXTS)})


def test_pipes_after_the_query_and_the_retriever(reranker, retriever) -> None:  # type: ignore[no-untyped-def]
    assert issubclass(RankRAGReranker, BaseDocumentCompressor) and issubclass(RankRAGReranker, Runnable)
    rerank = {"query": RunnablePassthrough(), "documents": retriever} | reranker
    collector = RunCollectorCallbackHandler()
    result = rerank.invoke(QUERY, config={"callbacks": [collector]})
    assert result == reranker.compress_documents(retriever.invoke(QUERY), QUERY)
    assert len(result) == reranker.top_n and result[0].page_content == TEXTS[1]
    (outer,) = collector.traced_runs
    assert [child.name for child in outer.child_runs][-1] == "RankRAGReranker"  # one run, under the sequence
    assert asyncio.run(rerank.ainvoke(QUERY)) == result
    assert rerank.batch([QUERY, QUERY]) == [result, result]
    # the reranker's output pipes on like any Runnable's
    pids = rerank | (lambda docs: [d.metadata["source"] for d in docs])
    assert pids.invoke(QUERY) == [d.metadata["source"] for d in result]


def test_invoked_directly_with_query_and_documents(reranker) -> None:  # type: ignore[no-untyped-def]
    expected = reranker.compress_documents(documents(), QUERY)
    assert reranker.invoke({"query": QUERY, "documents": documents()}) == expected
    assert reranker.invoke({"question": QUERY, "documents": documents()}) == expected
    assert asyncio.run(reranker.ainvoke({"query": QUERY, "documents": documents()})) == expected
    assert reranker.invoke({"query": QUERY, "documents": []}) == []
    assert reranker.InputType.__name__ == "RerankInput"


def test_the_bare_pipe_says_how_to_compose(reranker, retriever) -> None:  # type: ignore[no-untyped-def]
    """`retriever | reranker` builds, but the retriever's output has no query: the error names the composition."""
    with pytest.raises(TypeError, match=r"needs the query as well as the documents.*RunnablePassthrough\(\)"):
        (retriever | reranker).invoke(QUERY)
    with pytest.raises(ValueError, match="needs a 'documents' entry"):
        reranker.invoke({"query": QUERY})
    with pytest.raises(ValueError, match="query is empty or only whitespace"):
        reranker.invoke({"query": " ", "documents": documents()})

"""A threshold on the calibrated relevance in LangChain: the reranker drops passages no one would call relevant, and
the chain answers "not found" without calling the generator, streaming or not."""

from __future__ import annotations

import pytest
from langchain_core.documents import Document
from langchain_core.vectorstores import InMemoryVectorStore
from relevance_case import IRRELEVANT, QUESTION, RELEVANT, WITH_RELEVANT

from rankrag.defaults import NOT_FOUND_MESSAGE
from rankrag_langchain import RankRAGLLM, RankRAGReranker, create_rankrag_chain


@pytest.mark.parametrize("first_stage", ["lexical", "dense"])
def test_a_threshold_keeps_nothing_irrelevant_and_keeps_the_relevant_passage(embedded_model, first_stage: str) -> None:  # type: ignore[no-untyped-def]
    """Issue 41's case (tests/core/test_relevance.py): 0.5 keeps nothing irrelevant; with the relevant passage added,
    it keeps that passage alone (0.73) in the lexical case. Placed 3rd of 6 with no retriever scores, as the dense
    kind it scores 0.26, kept alone at 0.2."""
    irrelevant = [Document(page_content=t) for t in IRRELEVANT]
    reranker = RankRAGReranker(model=embedded_model, top_n=3, score_threshold=0.5, first_stage=first_stage)
    assert list(reranker.compress_documents(irrelevant, QUESTION)) == []
    threshold = 0.5 if first_stage == "lexical" else 0.2
    reranker = RankRAGReranker(model=embedded_model, top_n=3, score_threshold=threshold, first_stage=first_stage)
    documents = [Document(page_content=t) for t in WITH_RELEVANT]
    kept = list(reranker.compress_documents(documents, QUESTION))
    assert [d.page_content for d in kept] == [RELEVANT]
    assert kept[0].metadata["relevance_score"] >= threshold


@pytest.fixture(scope="module")
def chain(embedded_model, embeddings):  # type: ignore[no-untyped-def]
    store = InMemoryVectorStore.from_documents([Document(page_content=t) for t in IRRELEVANT], embeddings)
    llm = RankRAGLLM(model=embedded_model, max_tokens=24)
    reranker = RankRAGReranker(model=embedded_model, top_n=5, first_stage="dense")
    return create_rankrag_chain(
        store.as_retriever(search_kwargs={"k": 5}), reranker=reranker, llm=llm, score_threshold=0.5
    )


def test_the_chain_abstains_without_calling_the_generator(chain, embedded_model, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def no_generation(*args: object, **kwargs: object) -> object:
        raise AssertionError("the generator was called")

    monkeypatch.setattr(type(embedded_model), "stream", no_generation)
    monkeypatch.setattr(type(embedded_model), "astream", no_generation)
    output = chain.invoke(QUESTION)
    assert output == {"source_documents": [], "abstained": True, "answer": NOT_FOUND_MESSAGE}
    chunks = list(chain.stream(QUESTION))
    assert chunks[0] == {"source_documents": [], "abstained": True} and chunks[1] == {"answer": NOT_FOUND_MESSAGE}


async def test_the_async_chain_abstains_too(chain) -> None:  # type: ignore[no-untyped-def]
    output = await chain.ainvoke(QUESTION)
    assert output["abstained"] is True and output["answer"] == NOT_FOUND_MESSAGE


def test_a_custom_message_and_a_bad_threshold(embedded_model, embeddings) -> None:  # type: ignore[no-untyped-def]
    store = InMemoryVectorStore.from_documents([Document(page_content=t) for t in IRRELEVANT], embeddings)
    custom = create_rankrag_chain(
        store.as_retriever(), model=embedded_model, score_threshold=0.5, not_found_message="Not in the docs."
    )
    assert custom.invoke(QUESTION)["answer"] == "Not in the docs."
    with pytest.raises(TypeError, match="score_threshold must be a number"):
        create_rankrag_chain(store.as_retriever(), model=embedded_model, score_threshold="0.5")  # type: ignore[arg-type]

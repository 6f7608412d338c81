"""Fuzzing the framework entry points: the LangChain and LlamaIndex rerankers and LLMs, and the chain helper.

Documents and nodes carry arbitrary unicode (or nothing), duplicates, missing or odd metadata and retrieval
scores; every call returns well-formed objects built from its inputs or raises a documented exception.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from fuzz_strategies import any_text, blank_text, long_text, nonblank_text
from hypothesis import given
from hypothesis import strategies as st
from reliability_budget import fuzz_settings, time_limit

from rankrag import RankRAGError
from rankrag.integration.messages import EMPTY_PROMPT_MESSAGE

pytestmark = pytest.mark.timeout(time_limit(600))

DOCUMENTED_ERRORS = (TypeError, ValueError, RankRAGError)
NEW_TOKENS = 2

texts = st.one_of(any_text, blank_text, any_text, long_text(1_000))
retrieval_scores = st.one_of(
    st.none(), st.floats(-1e6, 1e6), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=2)
)
metadata = st.one_of(
    st.just({}),
    st.fixed_dictionaries({"score": retrieval_scores}),
    st.dictionaries(st.text(max_size=8), st.one_of(st.integers(), any_text, st.none()), max_size=3),
)


def duplicated(items: st.SearchStrategy[list[Any]]) -> st.SearchStrategy[list[Any]]:
    """Lists in which some items appear twice."""
    return items.flatmap(lambda xs: st.just(xs + xs[: len(xs) // 2]))


# ------------------------------------------------------------------------------------------- LangChain
@pytest.fixture(scope="module")
def langchain(model):  # type: ignore[no-untyped-def]
    components = pytest.importorskip("rankrag_langchain")
    return (
        components.RankRAGReranker(model=model, top_n=3),
        components.RankRAGLLM(model=model, max_tokens=NEW_TOKENS),
        components,
    )


@fuzz_settings("model")
@given(
    query=st.one_of(nonblank_text, blank_text), contents=duplicated(st.lists(st.tuples(texts, metadata), max_size=4))
)
def test_langchain_reranker(langchain, query: str, contents: list[tuple[str, dict[str, Any]]]) -> None:  # type: ignore[no-untyped-def]
    from langchain_core.documents import Document

    reranker = langchain[0]
    documents = [Document(page_content=text, metadata=dict(meta)) for text, meta in contents]
    originals = [(d.page_content, dict(d.metadata)) for d in documents]
    try:
        kept = reranker.compress_documents(documents, query)
    except DOCUMENTED_ERRORS as error:
        assert not query.strip() and "query is empty" in str(error), f"unexpected {error!r}"
        return
    assert [(d.page_content, d.metadata) for d in documents] == originals, "inputs must not be modified"
    assert len(kept) == min(3, sum(1 for d in documents if d.page_content.strip()))  # blanks take no slot
    assert all(d.page_content.strip() for d in kept)
    ranks = [d.metadata["retrieval_rank"] for d in kept]
    assert len(set(ranks)) == len(ranks)
    scores = [d.metadata["relevance_score"] for d in kept]
    assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)
    for document in kept:
        assert document.page_content == documents[document.metadata["retrieval_rank"]].page_content


@fuzz_settings("generate")
@given(messages=st.one_of(texts, st.lists(st.tuples(st.sampled_from(["human", "ai", "system"]), texts), max_size=3)))
def test_langchain_llm(langchain, messages: Any) -> None:  # type: ignore[no-untyped-def]
    llm = langchain[1]
    try:
        reply = llm.invoke(messages)
    except DOCUMENTED_ERRORS as error:
        turns = [("human", messages)] if isinstance(messages, str) else messages
        nothing_to_answer = not any(text.strip() for role, text in turns if role != "system")
        assert nothing_to_answer and EMPTY_PROMPT_MESSAGE in str(error), f"unexpected {error!r}"
        return
    assert isinstance(reply.content, str)
    assert reply.usage_metadata["output_tokens"] <= NEW_TOKENS
    streamed = "".join(chunk.content for chunk in llm.stream(messages))  # type: ignore[misc]
    assert streamed == reply.content


@fuzz_settings("generate")
@given(question=st.one_of(nonblank_text, blank_text), contents=duplicated(st.lists(texts, max_size=4)))
def test_langchain_chain(langchain, question: str, contents: list[str]) -> None:  # type: ignore[no-untyped-def]
    from langchain_core.documents import Document
    from langchain_core.runnables import RunnableLambda

    reranker, llm, components = langchain
    retriever = RunnableLambda(lambda _: [Document(page_content=text) for text in contents])
    chain = components.create_rankrag_chain(retriever, reranker=reranker, llm=llm, top_k=2)
    try:
        result = chain.invoke(question)
    except DOCUMENTED_ERRORS as error:
        assert not question.strip() and "question is empty" in str(error), f"unexpected {error!r}"
        return
    assert isinstance(result["answer"], str)
    assert len(result["source_documents"]) <= 2
    assert all(d.page_content in contents for d in result["source_documents"])


# ------------------------------------------------------------------------------------------ LlamaIndex
@pytest.fixture(scope="module")
def llamaindex(model):  # type: ignore[no-untyped-def]
    components = pytest.importorskip("rankrag_llamaindex")
    return components.RankRAGReranker(model=model, top_n=3), components.RankRAGLLM(
        model=model, max_new_tokens=NEW_TOKENS
    )


node_scores = st.one_of(st.none(), st.floats(-1e6, 1e6), st.floats(allow_nan=True, allow_infinity=True))


@fuzz_settings("model")
@given(
    query=st.one_of(nonblank_text, blank_text),
    contents=duplicated(st.lists(st.tuples(texts, node_scores, metadata), max_size=4)),
)
def test_llamaindex_reranker(llamaindex, query: str, contents: list[tuple[str, float | None, dict[str, Any]]]) -> None:  # type: ignore[no-untyped-def]
    from llama_index.core.schema import NodeWithScore, TextNode

    reranker = llamaindex[0]
    nodes = [
        NodeWithScore(
            node=TextNode(text=text, id_=f"n{i}", metadata={k: v for k, v in meta.items() if v is not None}),
            score=score,
        )
        for i, (text, score, meta) in enumerate(contents)
    ]
    try:
        kept = reranker.postprocess_nodes(nodes, query_str=query)
    except DOCUMENTED_ERRORS as error:
        blank = not query.strip()
        non_finite = any(s is not None and not math.isfinite(s) for _, s, _ in contents)
        assert (blank and "empty" in str(error)) or (non_finite and "finite" in str(error)), f"unexpected {error!r}"
        return
    assert len(kept) == min(3, sum(1 for text, _, _ in contents if text.strip()))  # blanks take no slot
    ids = [n.node.id_ for n in kept]
    assert len(set(ids)) == len(ids) and set(ids) <= {n.node.id_ for n in nodes}
    scores = [n.score for n in kept]
    assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)  # type: ignore[operator]


@fuzz_settings("generate")
@given(prompt=texts, chat=st.lists(st.tuples(st.sampled_from(["user", "assistant", "system"]), texts), max_size=3))
def test_llamaindex_llm(llamaindex, prompt: str, chat: list[tuple[str, str]]) -> None:  # type: ignore[no-untyped-def]
    from llama_index.core.base.llms.types import ChatMessage

    llm = llamaindex[1]
    if not prompt.strip():
        with pytest.raises(ValueError, match="the prompt is empty"):
            llm.complete(prompt)
        return
    completion = llm.complete(prompt)
    assert isinstance(completion.text, str)
    streamed = ""
    for response in llm.stream_complete(prompt):
        streamed = response.text
    assert streamed == completion.text
    messages = [ChatMessage(role=role, content=text) for role, text in chat]
    try:
        reply = llm.chat(messages)
    except DOCUMENTED_ERRORS as error:
        nothing_to_answer = not any(text.strip() for role, text in chat if role != "system")
        assert nothing_to_answer and EMPTY_PROMPT_MESSAGE in str(error), f"unexpected {error!r}"
        return
    assert isinstance(reply.message.content, str)

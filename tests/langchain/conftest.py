"""Fixtures for the LangChain adapter tests: components on the session's embedded model, a real Chroma store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent.parent / "fixtures"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def squad_passages() -> list[dict[str, Any]]:
    return read_jsonl(FIXTURES / "squad_passages.jsonl")


@pytest.fixture(scope="session")
def squad_questions() -> dict[str, dict[str, Any]]:
    return {row["id"]: row for row in read_jsonl(FIXTURES / "squad_questions.jsonl")}


@pytest.fixture(scope="session")
def reranker(embedded_model):  # type: ignore[no-untyped-def]
    from rankrag_langchain import RankRAGReranker

    return RankRAGReranker(model=embedded_model, top_n=3)


@pytest.fixture(scope="session")
def chat_llm(base_model):  # type: ignore[no-untyped-def]
    """Free chat on the zero-shot base: the shipped adapter answers from passages in a few words, not chats."""
    from rankrag_langchain import RankRAGLLM

    return RankRAGLLM(model=base_model, max_tokens=8)


@pytest.fixture(scope="session")
def llm(embedded_model):  # type: ignore[no-untyped-def]
    from rankrag_langchain import RankRAGLLM

    return RankRAGLLM(model=embedded_model, max_tokens=8)


@pytest.fixture(scope="session")
def embeddings():  # type: ignore[no-untyped-def]
    """The embedded all-MiniLM-L6-v2, loaded once (Chroma's own default would try to download a model)."""
    from rankrag_langchain import embedded_embeddings

    return embedded_embeddings()


@pytest.fixture(scope="session")
def squad_store(tmp_path_factory, embeddings, squad_passages):  # type: ignore[no-untyped-def]
    """A persistent Chroma collection of the SQuAD fixture paragraphs, pid and title in metadata."""
    import chromadb
    from langchain_chroma import Chroma
    from langchain_core.documents import Document

    client = chromadb.PersistentClient(path=str(tmp_path_factory.mktemp("chroma")))
    store = Chroma(client=client, collection_name="squad", embedding_function=embeddings)
    store.add_documents(
        [Document(page_content=p["text"], metadata={"pid": p["pid"], "title": p["title"]}) for p in squad_passages],
        ids=[p["pid"] for p in squad_passages],
    )
    return store

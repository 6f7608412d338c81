"""Fixtures for the LlamaIndex adapter tests: the shared embedded model, and a real Chroma index of SQuAD paragraphs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core import Settings  # noqa: E402
from llama_index.core.schema import NodeWithScore, TextNode  # noqa: E402

from rankrag_llamaindex import RankRAGLLM, RankRAGReranker  # noqa: E402

FIXTURES = Path(__file__).parent.parent / "fixtures"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def llm(embedded_model) -> RankRAGLLM:  # type: ignore[no-untyped-def]
    """Short greedy generations on the shared embedded model."""
    return RankRAGLLM(model=embedded_model, max_new_tokens=8)


@pytest.fixture(scope="session")
def chat_llm(base_model) -> RankRAGLLM:  # type: ignore[no-untyped-def]
    """Free chat without retrieved passages, on the zero-shot base: the shipped adapter is tuned to answer
    from passages in a few words ("The capital of France" for a closed-book question), not to chat."""
    return RankRAGLLM(model=base_model, max_new_tokens=8)


@pytest.fixture(scope="session")
def reranker(embedded_model) -> RankRAGReranker:  # type: ignore[no-untyped-def]
    return RankRAGReranker(model=embedded_model, top_n=2)


@pytest.fixture
def hamlet_nodes() -> list[NodeWithScore]:
    texts_and_scores = [
        ("Paris is the capital and largest city of France.", 0.9),
        ("Hamlet is a tragedy written by William Shakespeare around 1600.", 0.5),
        ("The Amazon is the largest tropical rainforest on Earth.", 0.7),
    ]
    return [
        NodeWithScore(node=TextNode(text=text, id_=f"n{i}"), score=score)
        for i, (text, score) in enumerate(texts_and_scores)
    ]


@pytest.fixture
def restore_settings() -> Iterator[None]:
    """Put LlamaIndex's global Settings back after a test that sets them."""
    saved = (Settings._llm, Settings._embed_model)
    yield
    Settings._llm, Settings._embed_model = saved


@pytest.fixture(scope="session")
def squad_passages() -> list[dict[str, Any]]:
    return read_jsonl(FIXTURES / "squad_passages.jsonl")


@pytest.fixture(scope="session")
def squad_questions() -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in read_jsonl(FIXTURES / "squad_questions.jsonl")}


@pytest.fixture(scope="session")
def embed_model():  # type: ignore[no-untyped-def]
    """The packaged all-MiniLM-L6-v2 as a LlamaIndex embedding (loaded from disk, never from the hub)."""
    from rankrag_llamaindex import embedded_embed_model

    return embedded_embed_model()


@pytest.fixture(scope="session")
def squad_index(tmp_path_factory, embed_model, squad_passages):  # type: ignore[no-untyped-def]
    """A VectorStoreIndex over every fixture paragraph in a persistent Chroma DB in a temp dir."""
    import chromadb
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.vector_stores.chroma import ChromaVectorStore

    client = chromadb.PersistentClient(path=str(tmp_path_factory.mktemp("chroma")))
    store = ChromaVectorStore(chroma_collection=client.get_or_create_collection("squad"))
    nodes = [
        TextNode(
            text=p["text"],
            id_=p["pid"],
            metadata={"pid": p["pid"], "title": p["title"]},
            excluded_embed_metadata_keys=["pid"],
            excluded_llm_metadata_keys=["pid"],
        )
        for p in squad_passages
    ]
    storage = StorageContext.from_defaults(vector_store=store)
    return VectorStoreIndex(nodes, storage_context=storage, embed_model=embed_model)

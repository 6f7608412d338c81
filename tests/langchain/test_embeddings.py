"""embedded_embeddings(): the packaged all-MiniLM-L6-v2 as LangChain Embeddings in one line, read from disk."""

from __future__ import annotations

import sys

import pytest

from rankrag_langchain import embedded_embeddings

QUERY = "What is the capital of Kenya?"


def test_embedded_embeddings_is_the_packaged_minilm(embeddings) -> None:  # type: ignore[no-untyped-def]
    from langchain_core.embeddings import Embeddings
    from langchain_huggingface import HuggingFaceEmbeddings

    from rankrag.model.embedded import embedding_model_path

    assert isinstance(embeddings, HuggingFaceEmbeddings) and isinstance(embeddings, Embeddings)
    assert embeddings.model_name == str(embedding_model_path())
    vector = embeddings.embed_query(QUERY)
    assert len(vector) == 384
    other = embedded_embeddings(encode_kwargs={"batch_size": 2})
    assert other.embed_documents([QUERY])[0] == pytest.approx(vector, abs=1e-5)


def test_building_it_prints_no_loading_bar(capfd: pytest.CaptureFixture[str]) -> None:
    """The load takes under a second: transformers' "Loading weights" bar stays off for it, and on afterwards."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.enable_progress_bar()  # other tests' CLI runs may have turned the bars off in this process
    capfd.readouterr()
    embedded_embeddings()
    captured = capfd.readouterr()
    assert "Loading weights" not in captured.err + captured.out
    assert transformers_logging.is_progress_bar_enabled()


def test_embedded_embeddings_without_its_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from rankrag import MissingDependencyError

    monkeypatch.setitem(sys.modules, "langchain_huggingface", None)  # makes the import fail
    with pytest.raises(
        MissingDependencyError, match=r"embedded_embeddings\(\) needs langchain_huggingface.*rankrag\[langchain\]"
    ):
        embedded_embeddings()


def test_in_a_real_vector_store(embeddings) -> None:  # type: ignore[no-untyped-def]
    from langchain_core.vectorstores import InMemoryVectorStore

    store = InMemoryVectorStore.from_texts(
        ["Nairobi is the capital of Kenya.", "Warsaw is the capital of Poland.", "Bananas are yellow."], embeddings
    )
    assert store.similarity_search(QUERY, k=1)[0].page_content == "Nairobi is the capital of Kenya."

"""embedded_embed_model(): the packaged all-MiniLM-L6-v2 as a LlamaIndex embedding in one line, read from disk."""

from __future__ import annotations

import sys

import pytest
from llama_index.core import VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.schema import TextNode

from rankrag import MissingDependencyError
from rankrag.model.embedded import embedding_model_path
from rankrag_llamaindex import embedded_embed_model

QUERY = "What is the capital of Kenya?"


def test_embedded_embed_model_is_the_packaged_minilm(embed_model) -> None:  # type: ignore[no-untyped-def]
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    assert isinstance(embed_model, HuggingFaceEmbedding) and isinstance(embed_model, BaseEmbedding)
    assert embed_model.model_name == str(embedding_model_path())
    vector = embed_model.get_query_embedding(QUERY)
    assert len(vector) == 384
    other = embedded_embed_model(embed_batch_size=2, device="cpu")
    assert other.get_query_embedding(QUERY) == pytest.approx(vector, abs=1e-5)


def test_in_a_real_index(embed_model) -> None:  # type: ignore[no-untyped-def]
    texts = ["Nairobi is the capital of Kenya.", "Warsaw is the capital of Poland.", "Bananas are yellow."]
    index = VectorStoreIndex([TextNode(text=text) for text in texts], embed_model=embed_model)
    (best,) = index.as_retriever(similarity_top_k=1).retrieve(QUERY)
    assert best.node.get_content() == texts[0]


def test_building_it_prints_no_loading_bar(capfd: pytest.CaptureFixture[str]) -> None:
    """The load takes under a second: transformers' "Loading weights" bar stays off for it, and on afterwards."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.enable_progress_bar()  # other tests' CLI runs may have turned the bars off in this process
    capfd.readouterr()
    embedded_embed_model()
    captured = capfd.readouterr()
    assert "Loading weights" not in captured.err + captured.out
    assert transformers_logging.is_progress_bar_enabled()


def test_without_its_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_index.embeddings.huggingface", None)  # makes the import fail
    with pytest.raises(
        MissingDependencyError,
        match=r"embedded_embed_model\(\) needs llama_index.embeddings.huggingface.*rankrag\[llamaindex\]",
    ):
        embedded_embed_model()


def test_public_names() -> None:
    import rankrag_llamaindex

    assert set(rankrag_llamaindex.__all__) == {
        "RankRAGLLM",
        "RankRAGQueryEngine",
        "RankRAGReranker",
        "create_rankrag_query_engine",
        "embedded_embed_model",
    }

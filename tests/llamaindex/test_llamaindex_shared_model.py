"""Every RankRAG component built from one model name holds ONE loaded model, across LlamaIndex and LangChain."""

from __future__ import annotations

import pytest

from rankrag.model.embedded import embedded_llm_path
from rankrag_llamaindex import RankRAGLLM, RankRAGReranker


def test_reranker_and_llm_built_from_one_name_share_one_model(embedded_model):
    name = str(embedded_llm_path())
    reranker, llm = RankRAGReranker(name, top_n=3), RankRAGLLM(source=name)
    assert reranker.model is llm.model
    assert RankRAGReranker().model is RankRAGLLM().model is embedded_model
    assert RankRAGLLM(model=reranker.model).model is reranker.model
    assert RankRAGLLM(model_name=name).model is reranker.model  # the LangChain components' spelling
    assert reranker.model_name == llm.metadata.model_name == embedded_model.name


def test_conflicting_model_arguments_are_a_clear_error(embedded_model):
    name = str(embedded_llm_path())
    with pytest.raises(ValueError, match="different models"):
        RankRAGReranker(name, source="another/model")
    assert RankRAGReranker(name, source=name).model is RankRAGReranker(name).model  # one name, said twice
    with pytest.raises(ValueError, match="different models"):
        RankRAGLLM(source=name, model_name="another/model")
    with pytest.raises(ValueError, match="loaded RankRAGModel together with load options"):
        RankRAGReranker(model=embedded_model, adapter=None)


def test_langchain_and_llamaindex_components_share_one_model(embedded_model):
    langchain = pytest.importorskip("rankrag_langchain")
    name = str(embedded_llm_path())
    langchain_reranker = langchain.RankRAGReranker(model=name, top_n=3)
    llamaindex_llm = RankRAGLLM(name)
    assert langchain_reranker.model is llamaindex_llm.model
    assert langchain.RankRAGLLM().model is RankRAGReranker().model is embedded_model

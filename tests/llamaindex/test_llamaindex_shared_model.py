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


def test_to_dict_from_dict_rebuilds_the_same_components_offline(embedded_model, base_model):
    """LlamaIndex serialization: the dict holds the load arguments (not the display name) and settings."""
    import json

    reranker = RankRAGReranker(top_n=3, alpha=0.5)
    data = json.loads(json.dumps(reranker.to_dict()))  # what to_json / a stored config would hold
    rebuilt = RankRAGReranker.from_dict(data)
    assert rebuilt.model is embedded_model and (rebuilt.top_n, rebuilt.alpha) == (3, 0.5)

    llm = RankRAGLLM(adapter=None, max_new_tokens=7)
    rebuilt_llm = RankRAGLLM.from_dict(json.loads(json.dumps(llm.to_dict())))
    assert rebuilt_llm.model is base_model and rebuilt_llm.max_new_tokens == 7

    with pytest.raises(ValueError, match="not written by a RankRAG component"):
        RankRAGReranker.from_dict({"top_n": 3, "model_name": reranker.model_name})

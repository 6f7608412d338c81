"""The reranker and the chat model hold ONE loaded model: by identity, and by process memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rankrag_langchain import RankRAGLLM, RankRAGReranker

REPO_ROOT = Path(__file__).parent.parent.parent


def test_same_load_options_give_the_same_instance(embedded_model) -> None:  # type: ignore[no-untyped-def]
    reranker, llm = RankRAGReranker(), RankRAGLLM()
    assert reranker.model is embedded_model and llm.model is embedded_model
    assert RankRAGReranker(dtype="auto", device="auto", adapter="default").model is embedded_model
    assert RankRAGLLM(source=None).model is embedded_model


def test_a_loaded_model_is_shared_as_is(embedded_model) -> None:  # type: ignore[no-untyped-def]
    reranker = RankRAGReranker(model=embedded_model)
    llm = RankRAGLLM(model=reranker.model)
    assert llm.model is reranker.model is embedded_model
    assert llm.rankrag_model is embedded_model


def test_conflicting_model_arguments_are_errors(embedded_model) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="loaded RankRAGModel together with load options"):
        RankRAGLLM(model=embedded_model, dtype="float32")
    with pytest.raises(ValueError, match="name different models"):
        RankRAGReranker(model="org/a", model_name="org/b")
    with pytest.raises(ValueError, match="name different models"):
        RankRAGLLM(source="org/a", model_name="org/b")


def test_model_given_by_name_is_loaded_through_the_registry(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from rankrag.errors import ModelNotFoundError

    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelNotFoundError):
        RankRAGReranker(model=missing)  # a path is a model name, resolved by RankRAGModel.load


_MEMORY_PROBE = textwrap.dedent(
    """
    import gc, json, psutil
    import torch, transformers  # import the libraries first: their memory is not the model's
    from langchain_core.documents import Document
    from rankrag_langchain import RankRAGLLM, RankRAGReranker

    def use(reranker, llm):  # touch every weight (memory-mapped weights count once read) and warm both paths
        reranker.compress_documents([Document(page_content="Nairobi is in Kenya.")], "Where is Nairobi?")
        llm.invoke("Hi", max_tokens=2)

    def rss():
        gc.collect()
        return psutil.Process().memory_info().rss

    start = rss()
    reranker = RankRAGReranker(model_name=None, device="cpu")
    use(reranker, RankRAGLLM(model=reranker.model))
    after_first = rss()
    llm = RankRAGLLM(model_name=None, device="cpu")
    from_model = RankRAGLLM(model=reranker.model)
    use(RankRAGReranker(model_name=None, device="cpu"), llm)
    use(reranker, from_model)
    after_second = rss()
    weights = sum(p.numel() * p.element_size() for p in reranker.model.model.parameters())
    print(json.dumps({
        "shared": llm.model is reranker.model and from_model.model is reranker.model,
        "first": after_first - start, "second": after_second - after_first, "weights": weights,
    }))
    """
)


def test_second_component_does_not_load_a_second_model() -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    probe = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    numbers = json.loads(probe.stdout.strip().splitlines()[-1])
    assert numbers["shared"]
    assert numbers["first"] > 0.5 * numbers["weights"], numbers  # the probe does see a model load
    assert numbers["second"] < 0.1 * numbers["weights"], numbers  # ... and no second one

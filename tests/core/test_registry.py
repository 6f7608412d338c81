"""One shared model per load spec: identity, equal specs written differently, concurrent first loads."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from rankrag import RankRAGModel
from rankrag.model import loading
from rankrag.model.registry import SharedRegistry


def test_same_arguments_return_the_same_instance(embedded_model) -> None:
    assert RankRAGModel.load() is embedded_model
    assert RankRAGModel.load(None, dtype="auto", device="auto", adapter="default") is embedded_model


def test_equal_specs_written_differently_share_the_instance(embedded_model) -> None:
    from rankrag.model.embedded import embedded_llm_path

    if embedded_model.spec.ranker_adapter is not None:
        pytest.skip("a shipped adapter makes the default load differ from the bare GGUF")
    assert RankRAGModel.load(embedded_llm_path(), dtype="fp32", device="cpu") is embedded_model
    assert RankRAGModel.load(str(embedded_llm_path()), dtype="float32", adapter=None) is embedded_model


def test_base_model_differs_only_when_an_adapter_ships(embedded_model, base_model) -> None:
    assert (base_model is embedded_model) == (embedded_model.spec.ranker_adapter is None)
    assert base_model.spec.ranker_adapter is None


def test_with_options_shares_the_weights(embedded_model) -> None:
    from rankrag import PromptTemplates

    handle = embedded_model.with_options(templates=PromptTemplates(style="chatqa"))
    assert handle is not embedded_model
    assert handle.model is embedded_model.model and handle.tokenizer is embedded_model.tokenizer
    assert RankRAGModel.load() is embedded_model


@pytest.mark.timeout(300)
def test_concurrent_first_loads_load_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight threads ask for a spec nobody loaded yet (bfloat16 embedded model) at the same moment."""
    real_load = loading.load_model_and_tokenizer
    calls: list[loading.ModelSpec] = []

    def counting_load(spec: loading.ModelSpec):  # type: ignore[no-untyped-def]
        calls.append(spec)
        time.sleep(0.5)  # widen the window in which a broken registry would start a second load
        return real_load(spec)

    monkeypatch.setattr(loading, "load_model_and_tokenizer", counting_load)
    barrier = threading.Barrier(8)

    def load(_: int) -> RankRAGModel:
        barrier.wait()
        return RankRAGModel.load(dtype="bfloat16", device="cpu")

    with ThreadPoolExecutor(max_workers=8) as pool:
        models = list(pool.map(load, range(8)))
    assert len(calls) == 1 and calls[0].dtype == "bfloat16"
    assert all(model is models[0] for model in models)
    assert str(models[0].model.dtype) == "torch.bfloat16"
    assert RankRAGModel.load(dtype="bf16", device="cpu") is models[0]
    assert len(calls) == 1


def test_registry_loads_each_key_once_and_keys_in_parallel() -> None:
    registry: SharedRegistry[object] = SharedRegistry()
    created: list[str] = []
    both_started = threading.Barrier(2, timeout=10)

    def factory(key: str):  # type: ignore[no-untyped-def]
        def make() -> object:
            created.append(key)
            if key in ("a", "b"):
                both_started.wait()  # deadlocks (times out) if different keys load one after the other
            return object()

        return make

    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = [pool.submit(registry.get_or_create, key, factory(key)) for key in ("a", "b", "a", "b", "a", "b")]
        results = [f.result(timeout=20) for f in futures]
    assert sorted(created) == ["a", "b"]
    assert results[0] is results[2] is results[4]
    assert results[1] is results[3] is results[5]
    assert results[0] is not results[1]
    assert len(registry) == 2


def test_failed_load_is_not_cached() -> None:
    registry: SharedRegistry[str] = SharedRegistry()

    def broken() -> str:
        raise OSError("disk on fire")

    with pytest.raises(OSError, match="disk on fire"):
        registry.get_or_create("k", broken)
    assert registry.get("k") is None
    assert registry.get_or_create("k", lambda: "loaded") == "loaded"

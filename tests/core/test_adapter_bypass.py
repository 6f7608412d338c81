"""One loaded instance ranks with its adapter and can generate with the base weights (RankRAGModel.generator)."""

from __future__ import annotations

import threading

import pytest
import torch

from rankrag import RankRAGModel
from rankrag.model import adapter_bypass

QUESTION = "Which river flows through Paris?"
PASSAGES = ["The Seine flows through Paris before reaching the English Channel.", "Bananas are yellow."]


def _logits(model: RankRAGModel, ids: list[int]) -> torch.Tensor:
    with torch.inference_mode():
        return model.model(torch.tensor([ids])).logits[0, -1].float()


def test_the_embedded_model_has_a_bypass_and_the_base_has_none(embedded_model, base_model) -> None:  # type: ignore[no-untyped-def]
    bypass = adapter_bypass.bypass_for(embedded_model.model)
    assert bypass is not None and bypass.layers > 0
    assert adapter_bypass.bypass_for(base_model.model) is None


def test_base_weights_reproduce_the_base_model_and_leave_the_adapter_outside(embedded_model, base_model) -> None:  # type: ignore[no-untyped-def]
    ids = embedded_model.answer_prompt_ids(QUESTION, PASSAGES)
    adapted = _logits(embedded_model, ids)
    base = _logits(base_model, ids)
    with adapter_bypass.base_weights(embedded_model.model):
        bypassed = _logits(embedded_model, ids)
    assert (adapted - base).abs().max() > 0.5  # the adapter changes the model, so the check below can fail
    assert (bypassed - base).abs().max() < 1e-3
    assert torch.equal(_logits(embedded_model, ids), adapted)  # leaving the block restores the adapter


def test_the_bypass_is_per_thread(embedded_model) -> None:  # type: ignore[no-untyped-def]
    ids = embedded_model.answer_prompt_ids(QUESTION, PASSAGES)
    adapted = _logits(embedded_model, ids)
    seen: list[torch.Tensor] = []
    inside = threading.Event()
    done = threading.Event()

    def other_thread() -> None:
        inside.wait(30)
        seen.append(_logits(embedded_model, ids))
        done.set()

    worker = threading.Thread(target=other_thread)
    worker.start()
    with adapter_bypass.base_weights(embedded_model.model):
        inside.set()
        done.wait(60)
    worker.join()
    assert torch.equal(seen[0], adapted)


def test_generator_base_answers_as_the_base_model_and_still_ranks_with_the_adapter(embedded_model, base_model) -> None:  # type: ignore[no-untyped-def]
    base_generator = RankRAGModel.load(generator="base")
    adapter_generator = RankRAGModel.load(generator="adapter")
    assert base_generator.model is embedded_model.model  # one instance, two behaviours
    assert base_generator.score(QUESTION, PASSAGES) == embedded_model.score(QUESTION, PASSAGES)
    assert base_generator.generate(QUESTION, PASSAGES, max_new_tokens=12) == base_model.generate(
        QUESTION, PASSAGES, max_new_tokens=12
    )
    assert "".join(base_generator.stream(QUESTION, PASSAGES, max_new_tokens=12)) == base_model.generate(
        QUESTION, PASSAGES, max_new_tokens=12
    )
    assert adapter_generator.generates_with_adapter and not base_generator.generates_with_adapter


def test_the_shipped_adapter_records_base_generation(embedded_model) -> None:  # type: ignore[no-untyped-def]
    assert embedded_model.generator == "auto"
    assert embedded_model.calibration is not None and embedded_model.calibration["generator"] == "base"
    assert not embedded_model.generates_with_adapter


def test_an_unknown_generator_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown generator 'neither'"):
        RankRAGModel.load(generator="neither")  # type: ignore[arg-type]

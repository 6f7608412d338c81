"""Two roles on one loaded base (rankrag.model.roles): the ranker scores with its adapter merged, the answerer
generates with its own adapter or the base weights, per thread, on the same instance."""

from __future__ import annotations

import copy
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from rankrag import RankRAGModel
from rankrag.errors import ModelNotFoundError
from rankrag.model import roles
from rankrag.model.loading import DEFAULT_ADAPTER_NAME, SHIPPED_ADAPTERS_DIR

QUESTION = "Which river flows through Paris?"
PASSAGES = ["The Seine flows through Paris before reaching the English Channel.", "Bananas are yellow."]


def _logits(model: RankRAGModel, ids: list[int], role: roles.Role | None = None) -> torch.Tensor:
    assert model.model is not None
    with torch.inference_mode():
        if role is None:
            return model.model(torch.tensor([ids])).logits[0].float()
        with roles.weights_of(model.model, role):
            return model.model(torch.tensor([ids])).logits[0].float()


def _merged(base_model: RankRAGModel, adapter: Path) -> torch.nn.Module:
    """A separate copy of the base with ``adapter`` merged in by PEFT: the reference a role must match."""
    from peft import PeftModel

    wrapped = PeftModel.from_pretrained(copy.deepcopy(base_model.model), str(adapter))
    return wrapped.merge_and_unload().eval()


def test_the_shipped_roles_rank_with_the_adapter_and_answer_with_the_base(embedded_model) -> None:  # type: ignore[no-untyped-def]
    shipped = str(SHIPPED_ADAPTERS_DIR / DEFAULT_ADAPTER_NAME)
    assert embedded_model.adapters == {"ranker": shipped, "answerer": None}
    assert embedded_model.calibration["answerer_adapter"] is None  # recorded, with its evidence
    switch = roles.role_weights_for(embedded_model.model)
    assert switch is not None and switch.layers == {"answerer": 70}  # 7 projections x the adapter's 10 layers


def test_the_answerer_without_adapter_is_the_base_model(embedded_model, base_model) -> None:  # type: ignore[no-untyped-def]
    ids = embedded_model.answer_prompt_ids(QUESTION, PASSAGES)
    ranker, answerer, base = (
        _logits(embedded_model, ids),
        _logits(embedded_model, ids, "answerer"),
        _logits(base_model, ids),
    )
    assert (ranker - base).abs().max() > 0.5  # the ranking adapter changes the model, so the check below can fail
    assert (answerer - base).abs().max() < 1e-4
    assert torch.equal(_logits(embedded_model, ids), ranker)  # leaving the role restores the ranker's weights
    assert embedded_model.generate(QUESTION, PASSAGES, max_new_tokens=12) == base_model.generate(
        QUESTION, PASSAGES, max_new_tokens=12
    )
    assert "".join(embedded_model.stream(QUESTION, PASSAGES, max_new_tokens=12)) == base_model.generate(
        QUESTION, PASSAGES, max_new_tokens=12
    )


def test_an_answer_adapter_gives_that_adapter_s_weights_and_leaves_ranking_alone(  # type: ignore[no-untyped-def]
    roles_model, embedded_model, base_model, answer_adapter_dir: Path
) -> None:
    assert roles_model.model is not embedded_model.model  # another answerer is another load
    assert roles_model.adapters["answerer"] == str(answer_adapter_dir)
    ids = roles_model.answer_prompt_ids(QUESTION, PASSAGES)
    with torch.inference_mode():
        reference = _merged(base_model, answer_adapter_dir)(torch.tensor([ids])).logits[0].float()
    answerer = _logits(roles_model, ids, "answerer")
    assert (reference - _logits(base_model, ids)).abs().max() > 0.5  # the test adapter changes the model
    assert (answerer - reference).abs().max() < 1e-4
    assert roles_model.score(QUESTION, PASSAGES) == embedded_model.score(QUESTION, PASSAGES)


def test_one_adapter_for_both_roles_needs_no_switch(answer_adapter_dir: Path) -> None:
    """``adapter=`` alone is RankRAG's recipe: the same adapter ranks and answers (it records no answerer)."""
    model = RankRAGModel.load(adapter=answer_adapter_dir)
    assert model.adapters == {"ranker": str(answer_adapter_dir), "answerer": str(answer_adapter_dir)}
    assert roles.role_weights_for(model.model) is None


def test_roles_are_per_thread(roles_model) -> None:  # type: ignore[no-untyped-def]
    ids = roles_model.answer_prompt_ids(QUESTION, PASSAGES)
    ranker = _logits(roles_model, ids)
    seen: list[torch.Tensor] = []
    inside, done = threading.Event(), threading.Event()

    def other_thread() -> None:
        inside.wait(30)
        seen.append(_logits(roles_model, ids))
        done.set()

    worker = threading.Thread(target=other_thread)
    worker.start()
    assert roles_model.model is not None
    with roles.weights_of(roles_model.model, "answerer"):
        inside.set()
        done.wait(60)
    worker.join()
    assert torch.equal(seen[0], ranker)


def test_scoring_and_answering_from_8_threads_equal_sequential_calls(roles_model) -> None:  # type: ignore[no-untyped-def]
    questions = [
        ("Which river flows through Paris?", PASSAGES),
        ("What colour are bananas?", PASSAGES),
        ("Who wrote Hamlet?", ["Hamlet is a tragedy by William Shakespeare.", "The Seine is a river."]),
        ("What is the capital of Japan?", ["Tokyo is the capital of Japan.", "Bananas are yellow."]),
    ]
    calls = [("score", q, p) for q, p in questions] + [("generate", q, p) for q, p in questions]

    def run(call: tuple[str, str, list[str]]) -> object:
        kind, question, passages = call
        if kind == "score":
            return roles_model.score(question, passages)
        return roles_model.generate(question, passages, max_new_tokens=10)

    sequential = [run(call) for call in calls]
    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(run, calls))
    for call, alone, together in zip(calls, sequential, concurrent):
        if call[0] == "score":
            assert together == pytest.approx(alone, abs=1e-5), call  # batching may differ by float rounding
        else:
            assert together == alone, call


def test_an_unknown_adapter_is_named_as_a_directory() -> None:
    with pytest.raises(ModelNotFoundError, match="no adapter directory named 'nope'"):
        RankRAGModel.load(answerer_adapter="nope")
    with pytest.raises(ModelNotFoundError, match="no adapter directory named 'nope'"):
        RankRAGModel.load(adapter="nope")

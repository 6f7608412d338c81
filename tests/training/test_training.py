"""Training mechanics on a tiny random Llama: loss on answer tokens, checkpoints, resume, adapter loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from training_helpers import EXAMPLES, fast_config

from rankrag.train.lean_loop import (
    assistant_token_loss,
    collate,
    learning_rate_factor,
    length_grouped_order,
    split_by_tokens,
)
from rankrag.train.trainer import latest_checkpoint, plot_loss, read_loss_log, train


def test_head_only_loss_equals_the_full_logits_loss(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    rows = [
        {"input_ids": [5, 6, 7, 8, 9], "completion_mask": [0, 0, 0, 1, 1]},
        {"input_ids": [10, 11, 12], "completion_mask": [0, 0, 1]},
    ]
    batch = collate(rows, pad_id=0)
    loss_sum, count = assistant_token_loss(model, batch)
    labels = torch.full_like(batch["input_ids"], -100)
    for row, record in enumerate(rows):
        for position, (token, masked) in enumerate(zip(record["input_ids"], record["completion_mask"])):
            if masked:
                labels[row, position] = token
    reference = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels).loss
    assert count == 3
    assert torch.allclose(loss_sum / count, reference, atol=1e-5)


def test_train_writes_adapter_log_checkpoints_and_resumes(tiny_model_dir: Path, tmp_path: Path) -> None:
    output = tmp_path / "run"
    result = train(fast_config(tiny_model_dir, output), EXAMPLES, progress=False)
    assert result.steps == 2 and result.examples == len(EXAMPLES)
    assert (output / "adapter_config.json").is_file() and (output / "adapter_model.safetensors").is_file()
    log = read_loss_log(output / "loss_log.jsonl")
    assert [r["step"] for r in log] == [1, 2] and all(r["loss"] > 0 for r in log)
    assert latest_checkpoint(output / "checkpoints", "lean").name == "step-2"
    with pytest.raises(FileExistsError, match="--resume"):
        train(fast_config(tiny_model_dir, output), EXAMPLES, progress=False)
    resumed = train(fast_config(tiny_model_dir, output, steps=3, resume=True), EXAMPLES, progress=False)
    assert resumed.steps == 3
    assert [r["step"] for r in read_loss_log(output / "loss_log.jsonl")] == [1, 2, 3]
    assert latest_checkpoint(output / "checkpoints", "lean").name == "step-3"
    assert plot_loss(output / "loss_log.jsonl", tmp_path / "loss.png").stat().st_size > 1000


def test_resume_without_checkpoint_is_a_clear_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(fast_config(tiny_model_dir, tmp_path / "empty", resume=True), EXAMPLES, progress=False)


def test_trained_adapter_loads_and_changes_the_scores(tiny_model_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from rankrag import RankRAGModel

    output = tmp_path / "adapter"
    train(fast_config(tiny_model_dir, output, steps=3), EXAMPLES, progress=False)
    weights = load_file(str(output / "adapter_model.safetensors"))
    assert all(t.dtype == torch.float16 for t in weights.values())
    assert any("lora_B" in name and t.abs().sum() > 0 for name, t in weights.items())  # B starts at zero
    config = json.loads((output / "adapter_config.json").read_text())
    assert config["r"] == 4 and set(config["target_modules"]) >= {"q_proj", "down_proj"}
    plain = RankRAGModel.load(str(tiny_model_dir), adapter=None, device="cpu")
    tuned = RankRAGModel.load(str(tiny_model_dir), adapter=str(output), device="cpu")
    query, passages = "who wrote hamlet", ["Hamlet is a play by Shakespeare.", "The Nile is long."]
    assert tuned.score(query, passages) != plain.score(query, passages)


def test_trl_engine_runs_the_same_data(tiny_model_dir: Path, tmp_path: Path) -> None:
    output = tmp_path / "trl"
    result = train(fast_config(tiny_model_dir, output, engine="trl", steps=2), EXAMPLES, progress=False)
    assert result.steps == 2
    assert (output / "adapter_model.safetensors").is_file()
    assert latest_checkpoint(output / "checkpoints", "trl") is not None


def test_schedule_warms_up_and_decays() -> None:
    assert learning_rate_factor("cosine", 0.0, 0.1) < 0.01
    assert learning_rate_factor("cosine", 0.1, 0.1) == pytest.approx(1.0)
    assert learning_rate_factor("cosine", 1.0, 0.1) == pytest.approx(0.0, abs=1e-9)
    assert learning_rate_factor("linear", 0.55, 0.1) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="unknown schedule"):
        learning_rate_factor("sawtooth", 0.5, 0.0)


def test_batches_cover_every_example_once_per_epoch() -> None:
    lengths = [5, 300, 12, 40, 7, 90, 33]
    batches = length_grouped_order(lengths, 2, seed=1, epoch=0)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert batches == length_grouped_order(lengths, 2, seed=1, epoch=0)


def test_a_query_s_rows_share_a_batch_and_a_piece() -> None:
    lengths = [50, 300, 60, 45, 70, 55, 65, 40, 80]
    units = [[0, 3, 7], [1], [2, 5], [4], [6, 8]]
    for epoch in range(3):
        batches = length_grouped_order(lengths, 2, seed=1, epoch=epoch, units=units)
        assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
        for unit in units:
            assert any(set(unit) <= set(batch) for batch in batches)
        assert all(len(batch) >= 2 for batch in batches[:-1]) or len(batches) == len(units)
    unit_of = [0, 1, 2, 0, 3, 2, 4, 0, 4]
    pieces = split_by_tokens([0, 3, 7, 2, 5, 4], lengths, 130, unit_of)
    assert sorted(i for p in pieces for i in p) == [0, 2, 3, 4, 5, 7]
    for unit in ([0, 3, 7], [2, 5]):
        assert sum(set(unit) <= set(piece) for piece in pieces) == 1
    singletons = [[i] for i in range(len(lengths))]
    assert length_grouped_order(lengths, 2, 1, 0, units=singletons) == length_grouped_order(lengths, 2, 1, 0)
    assert split_by_tokens(range(9), lengths, 130, list(range(9))) == split_by_tokens(range(9), lengths, 130)


def test_long_batches_are_split_within_the_token_budget() -> None:
    lengths = [600, 610, 100, 90, 95, 620]
    pieces = split_by_tokens(range(6), lengths, 1300)
    assert sorted(i for p in pieces for i in p) == list(range(6))
    assert all(len(p) * max(lengths[i] for i in p) <= 1300 or len(p) == 1 for p in pieces)
    assert split_by_tokens([2, 3, 4], lengths, 10_000) == [[2, 4, 3]]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"steps": 0}, "steps"),
        ({"learning_rate": 2.0}, "learning_rate"),
        ({"quantization": "8bit"}, "QLoRA"),
        ({"engine": "fast"}, "engine"),
        ({"time_budget_minutes": 0}, "time_budget"),
    ],
)
def test_bad_training_settings_are_clear_errors(tmp_path: Path, changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fast_config(tmp_path, tmp_path / "x", **changes)


def test_train_restores_the_callers_thread_count(tiny_model_dir: Path, tmp_path: Path) -> None:
    """``threads=1`` holds for the run only: a notebook or test session scores with its own count afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        train(fast_config(tiny_model_dir, tmp_path / "run", steps=1), EXAMPLES, progress=False)
        assert torch.get_num_threads() == 2
        with pytest.raises(FileExistsError):
            train(fast_config(tiny_model_dir, tmp_path / "run", steps=1), EXAMPLES, progress=False)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)

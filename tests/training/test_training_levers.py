"""The cheaper-training levers and interruption safety, on a tiny random Llama (mechanics only)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from training_helpers import RANKING_EXAMPLES, fast_config

from rankrag.train.blend import write_blend
from rankrag.train.lean_loop import CheckpointError, assistant_token_loss, collate, listwise_margin_loss
from rankrag.train.trainer import latest_checkpoint, read_loss_log, train


def test_bf16_autocast_loss_is_close_to_float32(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    batch = collate([{"input_ids": [5, 6, 7, 8, 9], "completion_mask": [0, 0, 0, 1, 1]}], pad_id=0)
    full, _ = assistant_token_loss(model, batch)
    half, _ = assistant_token_loss(model, batch, autocast_bf16=True)
    assert half.dtype == torch.float32
    assert abs(float(full) - float(half)) < 0.05 * float(full)


def test_lora_on_top_layers_only_and_bf16(tiny_model_dir: Path, tmp_path: Path) -> None:
    output = tmp_path / "top"
    train(fast_config(tiny_model_dir, output, lora_layers=1, precision="bfloat16"), RANKING_EXAMPLES, progress=False)
    config = json.loads((output / "adapter_config.json").read_text())
    assert config["layers_to_transform"] == [1]
    names = list(load_file(str(output / "adapter_model.safetensors")))
    assert names and all(".layers.1." in name for name in names)
    assert json.loads((output / "train_summary.json").read_text())["precision"] == "bfloat16"


def test_init_adapter_warm_starts_from_a_committed_adapter(tiny_model_dir: Path, tmp_path: Path) -> None:
    first = tmp_path / "first"
    train(fast_config(tiny_model_dir, first, steps=3), RANKING_EXAMPLES, progress=False)
    warm = tmp_path / "warm"
    train(
        fast_config(tiny_model_dir, warm, steps=1, learning_rate=1e-9, init_adapter=str(first)),
        RANKING_EXAMPLES,
        progress=False,
    )
    before, after = (
        load_file(str(first / "adapter_model.safetensors")),
        load_file(str(warm / "adapter_model.safetensors")),
    )
    assert set(before) == set(after)
    assert any(t.abs().sum() > 0 for name, t in before.items() if "lora_B" in name)
    for name in before:
        assert torch.allclose(before[name].float(), after[name].float(), atol=1e-3), name
    with pytest.raises(ValueError, match="not an adapter directory"):
        fast_config(tiny_model_dir, tmp_path / "x", init_adapter=str(tmp_path))


def test_a_corrupted_checkpoint_is_a_clear_error_and_overwrites_nothing(tiny_model_dir: Path, tmp_path: Path) -> None:
    output = tmp_path / "run"
    train(fast_config(tiny_model_dir, output), RANKING_EXAMPLES, progress=False)
    adapter = (output / "adapter_model.safetensors").read_bytes()
    last = latest_checkpoint(output / "checkpoints", "lean")
    assert last is not None
    (last / "state.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match=r"step-2.*cannot be read"):
        train(fast_config(tiny_model_dir, output, steps=4, resume=True), RANKING_EXAMPLES, progress=False)
    assert (output / "adapter_model.safetensors").read_bytes() == adapter


def test_checkpoints_load_without_pickle(tiny_model_dir: Path, tmp_path: Path) -> None:
    output = tmp_path / "run"
    train(fast_config(tiny_model_dir, output), RANKING_EXAMPLES, progress=False)
    last = latest_checkpoint(output / "checkpoints", "lean")
    assert last is not None
    state = torch.load(last / "state.pt", weights_only=True)
    assert state["step"] == 2 and "adapter" not in state
    assert load_file(str(last / "adapter.safetensors"))


def test_a_time_budget_smaller_than_one_step_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    output = tmp_path / "run"
    with pytest.raises(ValueError, match="shorter than one training step"):
        train(
            fast_config(tiny_model_dir, output, steps=100, time_budget_minutes=1e-7), RANKING_EXAMPLES, progress=False
        )
    assert not (output / "adapter_model.safetensors").exists()
    assert latest_checkpoint(output / "checkpoints", "lean") is None


def test_a_run_killed_with_sigkill_resumes_from_its_last_checkpoint(tiny_model_dir: Path, tmp_path: Path) -> None:
    blend = write_blend(RANKING_EXAMPLES * 8, tmp_path / "blend.jsonl")
    output = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "rankrag.cli.app",
        "train",
        "--blend",
        str(blend),
        "--output",
        str(output),
        "--base",
        str(tiny_model_dir),
        "--steps",
        "100000",
        "--batch-size",
        "2",
        "--save-steps",
        "2",
        "--logging-steps",
        "1",
        "--lora-r",
        "4",
        "--lora-alpha",
        "8",
        "--threads",
        "1",
        "--no-progress",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and process.poll() is None:
            found = latest_checkpoint(output / "checkpoints", "lean")
            if found is not None and int(found.name.split("-")[1]) >= 4:
                break
            time.sleep(0.2)
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    killed_at = latest_checkpoint(output / "checkpoints", "lean")
    assert killed_at is not None
    step = int(killed_at.name.split("-")[1])
    resumed = train(
        fast_config(tiny_model_dir, output, steps=step + 2, save_steps=2, batch_size=2, resume=True),
        RANKING_EXAMPLES * 8,
        progress=False,
    )
    assert resumed.steps == step + 2
    logged = [r["step"] for r in read_loss_log(output / "loss_log.jsonl")]
    assert logged[-2:] == [step + 1, step + 2]


def test_binary_ranking_loss_is_cross_entropy_over_the_two_answer_tokens(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    true_id, false_id, end_id = 11, 12, 2
    rows = [
        {
            "input_ids": [5, 6, 7, false_id, end_id],
            "completion_mask": [0, 0, 0, 1, 1],
            "answer_pair": [true_id, false_id],
        },
        {"input_ids": [5, 8, 9, 10], "completion_mask": [0, 0, 1, 1]},  # a QA row: LM loss only
    ]
    batch = collate(rows, pad_id=0)
    assert batch["binary"].tolist() == [True, False, False, False]
    lm, count = assistant_token_loss(model, batch)
    binary, same_count = assistant_token_loss(model, batch, ranking_loss="binary")
    assert count == same_count == 4

    with torch.no_grad():
        logits = model(torch.tensor([rows[0]["input_ids"]])).logits[0]
        qa_logits = model(torch.tensor([rows[1]["input_ids"]])).logits[0]
    ce = torch.nn.functional.cross_entropy
    rest = ce(logits[3:4], torch.tensor([end_id]), reduction="sum") + ce(
        qa_logits[1:3], torch.tensor([9, 10]), reduction="sum"
    )
    two_rows = logits[2, [true_id, false_id]]
    expected_binary = ce(two_rows[None], torch.tensor([1]), reduction="sum") + rest
    expected_lm = ce(logits[2:3], torch.tensor([false_id]), reduction="sum") + rest
    assert torch.allclose(binary, expected_binary, atol=1e-4)
    assert torch.allclose(lm, expected_lm, atol=1e-4)
    assert float(binary) < float(lm)  # two rows leave less probability mass to miss than the whole vocabulary


def test_binary_ranking_loss_trains_and_is_recorded(tiny_model_dir: Path, tmp_path: Path) -> None:
    output = tmp_path / "binary"
    train(fast_config(tiny_model_dir, output, ranking_loss="binary"), RANKING_EXAMPLES, progress=False)
    assert json.loads((output / "training_args.json").read_text())["ranking_loss"] == "binary"
    assert all(math.isfinite(record["loss"]) for record in read_loss_log(output / "loss_log.jsonl"))


def test_listwise_loss_is_the_lm_loss_plus_a_softmax_over_each_query_s_margins(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    true_id, false_id, end_id = 11, 12, 2

    def ranking(prompt: list[int], answer: int, query: int) -> dict[str, object]:
        ids = [*prompt, answer, end_id]
        mask = [0] * len(prompt) + [1, 1]
        return {"input_ids": ids, "completion_mask": mask, "answer_pair": [true_id, false_id], "query": query}

    rows = [
        ranking([5, 6, 7], true_id, 0),
        ranking([5, 8], false_id, 0),
        ranking([5, 9, 9, 7], false_id, 0),
        ranking([5, 10, 6], true_id, 1),  # a query with no negative: no listwise term
        {"input_ids": [5, 8, 9, 10], "completion_mask": [0, 0, 1, 1]},
    ]
    batch = collate(rows, pad_id=0)
    assert batch["queries"].tolist() == [0, -1, 0, -1, 0, -1, 1, -1, -1, -1]
    lm, count = assistant_token_loss(model, batch)
    listwise, same_count = assistant_token_loss(model, batch, ranking_loss="listwise")
    assert count == same_count == 10

    with torch.no_grad():
        margins = []
        for row in rows[:3]:
            ids = row["input_ids"]
            logits = model(torch.tensor([ids])).logits[0, len(ids) - 3]
            margins.append(float(logits[true_id] - logits[false_id]))
    expected = math.log(sum(math.exp(m) for m in margins)) - margins[0]  # -log softmax of the positive
    assert float(listwise - lm) == pytest.approx(expected, abs=1e-4)
    assert float(listwise - lm) > 0


def test_listwise_margin_loss_counts_each_positive_against_its_own_query_s_negatives() -> None:
    margins = torch.tensor([2.0, 0.0, 1.0, -1.0, 3.0])
    queries = torch.tensor([0, 0, 0, 1, -1])
    relevant = torch.tensor([True, False, True, True, False])
    each = [math.log(math.exp(m) + 1.0) - m for m in (2.0, 1.0)]  # each positive of query 0 against margin 0
    assert float(listwise_margin_loss(margins, queries, relevant)) == pytest.approx(sum(each), abs=1e-6)
    assert float(listwise_margin_loss(margins, queries, torch.ones(5, dtype=torch.bool))) == 0.0


def test_listwise_loss_raises_the_positive_s_margin_over_the_negatives(tiny_model_dir: Path, tmp_path: Path) -> None:
    from rankrag import RankRAGModel

    output = tmp_path / "listwise"
    config = fast_config(
        tiny_model_dir, output, ranking_loss="listwise", steps=12, learning_rate=5e-3, lora_layers=None
    )
    train(config, RANKING_EXAMPLES, progress=False)
    assert json.loads((output / "training_args.json").read_text())["ranking_loss"] == "listwise"
    assert all(math.isfinite(record["loss"]) for record in read_loss_log(output / "loss_log.jsonl"))

    def p_true(adapter: Path | None) -> list[float]:
        model = RankRAGModel.load(str(tiny_model_dir), adapter=str(adapter) if adapter else None, device="cpu")
        return model.score("what is the capital of france", ["Paris is the capital of France.", "Bananas are yellow."])

    before, after = p_true(None), p_true(output)
    assert after[0] - after[1] > before[0] - before[1]


def test_unknown_or_unsupported_ranking_loss_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ranking_loss must be one of"):
        fast_config(tiny_model_dir, tmp_path / "x", ranking_loss="pairwise")
    for loss in ("binary", "listwise"):
        with pytest.raises(ValueError, match="needs the lean engine"):
            fast_config(tiny_model_dir, tmp_path / "y", ranking_loss=loss, engine="trl")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_frozen_weights_stored_in_bf16_give_autocast_s_loss_and_gradient_and_are_restored(
    tiny_model_dir: Path,
) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from rankrag.train.lean_loop import frozen_linears_in_bfloat16

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"]))
    for name, parameter in model.named_parameters():
        if "lora_B" in name:  # a fresh LoRA B is zero: give the LoRA path a gradient of its own
            torch.nn.init.normal_(parameter, std=0.05)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    rows = [
        {"input_ids": [5, 6, 7, 8, 9, 10, 2], "completion_mask": [0, 0, 0, 0, 0, 1, 1]},
        {"input_ids": [5, 6, 11, 12, 2], "completion_mask": [0, 0, 0, 1, 1]},
    ]
    batch = collate(rows, pad_id=0)

    def loss_and_gradients() -> tuple[float, list[torch.Tensor]]:
        model.zero_grad(set_to_none=True)
        loss, _ = assistant_token_loss(model, batch, autocast_bf16=True)
        loss.backward()
        return float(loss), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    autocast_loss, autocast_gradients = loss_and_gradients()
    with frozen_linears_in_bfloat16(model) as stored:
        assert stored > 0
        assert model.get_decoder().layers[0].mlp.up_proj.weight.dtype == torch.bfloat16
        assert all(p.dtype == torch.float32 for p in model.parameters() if p.requires_grad)
        stored_loss, stored_gradients = loss_and_gradients()
    assert stored_loss == pytest.approx(autocast_loss, rel=1e-6)
    assert len(stored_gradients) == len(autocast_gradients) > 0
    for a, b in zip(stored_gradients, autocast_gradients):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-7)
    for name, parameter in model.named_parameters():
        assert parameter.dtype == torch.float32 and torch.equal(parameter, before[name]), name

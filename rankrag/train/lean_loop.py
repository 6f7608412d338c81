"""A lean LoRA SFT loop for CPU: the LM head runs only where the loss needs it.

trl's SFTTrainer projects every position through the LM head on CPU (its compacting kernel is GPU-only) and
computes per-position entropy for its metrics. A ranking example has ~250 prompt tokens and 2 answer tokens,
so that head work is about a fifth of each step. This loop runs the decoder, gathers the hidden states that
predict assistant tokens, and applies the head to those rows only; the loss is the same token-mean cross
entropy over assistant tokens. It checkpoints (adapter, optimizer, step, training time) every N steps
and resumes from the latest checkpoint.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_PREFIX = "step-"

TrainingRow = dict[str, Any]
"""``input_ids`` and ``completion_mask`` (lists of ints); a ranking row adds ``answer_pair`` and ``query`` (an int)."""


@dataclass(frozen=True)
class LoopSettings:
    steps: int
    batch_size: int
    gradient_accumulation: int
    learning_rate: float
    warmup: float
    scheduler: str
    weight_decay: float
    save_steps: int
    logging_steps: int
    seed: int
    keep_checkpoints: int = 2
    time_budget_s: float | None = None
    max_batch_tokens: int = 1536
    autocast_bf16: bool = False
    ranking_loss: str = "lm"
    bf16_frozen_weights: bool = True


SCHEDULES = ("cosine", "linear", "constant")


def learning_rate_factor(schedule: str, progress: float, warmup: float) -> float:
    """Multiplier of the peak learning rate at ``progress`` (0..1) of the run: linear warmup, then decay."""
    if warmup > 0 and progress < warmup:
        return max(progress / warmup, 1e-3)
    if schedule == "constant":
        return 1.0
    rest = min(max((progress - warmup) / max(1.0 - warmup, 1e-9), 0.0), 1.0)
    if schedule == "linear":
        return 1.0 - rest
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * rest))
    raise ValueError(f"unknown schedule {schedule!r}; choose one of {SCHEDULES}")


def run_progress(step: int, steps: int, elapsed: float, time_budget_s: float | None) -> float:
    """How far the run is: by steps, or by wall time when a budget is set and that is further along."""
    by_steps = step / steps
    return max(by_steps, elapsed / time_budget_s) if time_budget_s else by_steps


def query_units(rows: Sequence[TrainingRow]) -> list[list[int]]:
    """Row indices grouped by their ``query`` (one ranking query's rows stay together); other rows alone."""
    units: list[list[int]] = []
    by_query: dict[int, list[int]] = {}
    for index, row in enumerate(rows):
        query = row.get("query")
        if query is None:
            units.append([index])
        elif query in by_query:
            by_query[query].append(index)
        else:
            by_query[query] = [index]
            units.append(by_query[query])
    return units


def length_grouped_order(
    lengths: Sequence[int],
    batch_size: int,
    seed: int,
    epoch: int,
    units: Sequence[Sequence[int]] | None = None,
) -> list[list[int]]:
    """Batches of similar length, in a seeded random order (shuffle, sort within mega-batches, shuffle batches).

    With ``units`` (lists of row indices), a unit's rows always share a batch, which then holds at least
    ``batch_size`` rows; without, every row is its own unit and a batch holds ``batch_size`` rows.
    """
    rng = random.Random(f"{seed}:epoch{epoch}")
    order = [list(u) for u in units] if units is not None else [[i] for i in range(len(lengths))]
    rng.shuffle(order)
    mega = batch_size * 16
    batches: list[list[int]] = []
    for start in range(0, len(order), mega):
        chunk = sorted(order[start : start + mega], key=lambda unit: -max(lengths[i] for i in unit))
        batch: list[int] = []
        for unit in chunk:
            batch += unit
            if len(batch) >= batch_size:
                batches.append(batch)
                batch = []
        if batch:
            batches.append(batch)
    rng.shuffle(batches)
    return batches


def batch_stream(
    lengths: Sequence[int],
    batch_size: int,
    seed: int,
    skip: int = 0,
    units: Sequence[Sequence[int]] | None = None,
) -> Iterator[list[int]]:
    """Endless batches over the data, epoch after epoch; ``skip`` batches are dropped (for resume)."""
    epoch, served = 0, 0
    while True:
        for batch in length_grouped_order(lengths, batch_size, seed, epoch, units):
            if served >= skip:
                yield batch
            served += 1
        epoch += 1


def split_by_tokens(
    batch: Sequence[int], lengths: Sequence[int], max_tokens: int, unit_of: Sequence[int] | None = None
) -> list[list[int]]:
    """Cut a batch into pieces whose padded size (rows x longest row) stays within ``max_tokens``.

    Activation memory grows with padded tokens (and attention with their square): a batch of eight
    600-token QA rows needs over 10 GB for the backward pass, the same rows in pieces a fraction of that.
    Rows with the same ``unit_of`` value (one query's ranking rows, for the listwise loss) stay in one piece.
    """
    members: dict[int, list[int]] = {}
    for index in batch:
        members.setdefault(unit_of[index] if unit_of is not None else -1 - index, []).append(index)
    units = sorted(
        (sorted(unit, key=lambda i: -lengths[i]) for unit in members.values()), key=lambda unit: -lengths[unit[0]]
    )
    pieces: list[list[int]] = []
    for unit in units:
        if pieces and (len(pieces[-1]) + len(unit)) * lengths[pieces[-1][0]] <= max_tokens:
            pieces[-1].extend(unit)
        else:
            pieces.append(list(unit))
    return pieces


def collate(rows: Sequence[TrainingRow], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded ids, attention mask, and (row, position, target) of every assistant token.

    A row with an ``answer_pair`` (True id, False id: a context-ranking example) marks its first assistant
    token as a True/False answer (``binary``), with the pair in ``pairs``, for ``ranking_loss="binary"``, and
    the row's ``query`` (-1 when it has none) in ``queries``, for ``ranking_loss="listwise"``.
    """
    width = max(len(r["input_ids"]) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    where_row, where_pos, targets, binary, pairs, queries, teachers = [], [], [], [], [], [], []
    for row, record in enumerate(rows):
        ids, mask, pair = record["input_ids"], record["completion_mask"], record.get("answer_pair") or []
        query = record.get("query")
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention[row, : len(ids)] = 1
        first = True
        for position in range(1, len(ids)):
            if mask[position]:
                where_row.append(row)
                where_pos.append(position - 1)  # the hidden state that predicts token `position`
                targets.append(ids[position])
                binary.append(first and len(pair) == 2)
                pairs.append(list(pair) if first and len(pair) == 2 else [0, 0])
                queries.append(int(query) if first and len(pair) == 2 and query is not None else -1)
                teacher = record.get("teacher")
                teachers.append(float(teacher) if first and len(pair) == 2 and teacher is not None else math.nan)
                first = False
    return {
        "input_ids": input_ids,
        "attention_mask": attention,
        "rows": torch.tensor(where_row, dtype=torch.long),
        "positions": torch.tensor(where_pos, dtype=torch.long),
        "targets": torch.tensor(targets, dtype=torch.long),
        "binary": torch.tensor(binary, dtype=torch.bool),
        "pairs": torch.tensor(pairs, dtype=torch.long).reshape(-1, 2),
        "queries": torch.tensor(queries, dtype=torch.long),
        "teachers": torch.tensor(teachers, dtype=torch.float32),
    }


RANKING_LOSSES = ("lm", "binary", "listwise", "distill")
# Losses that need a query's ranking rows together in one batch and one memory piece.
GROUPED_LOSSES = ("listwise", "distill")
# Softmax temperature of the teacher's cosines (MiniLM's own training scale, 20 = 1 / 0.05).
TEACHER_TEMPERATURE = 0.05


def assistant_token_loss(
    model: Any, batch: dict[str, torch.Tensor], autocast_bf16: bool = False, ranking_loss: str = "lm"
) -> tuple[torch.Tensor, int]:
    """Summed cross entropy over assistant tokens, and their count; the head sees only those rows.

    ``ranking_loss="lm"`` is the paper's SFT: every token against the whole vocabulary. ``"binary"`` scores a
    ranking answer against its two answer tokens only (softmax over logit(True), logit(False)), which is
    exactly the P(True) the scorer reads at inference (``normalization="binary"``); other tokens keep the LM loss.
    ``"listwise"`` keeps the LM loss on every token and adds, for each query in the batch with positive and
    negative rows, a softmax over the margins logit(True) - logit(False) of its rows: each positive against
    all of the query's negatives (:func:`listwise_margin_loss`). ``"distill"`` is ``"listwise"`` plus, for each
    query with two or more teacher-scored rows, the KL divergence from the teacher's softmax over the rows'
    cosines to the student's softmax over their margins (:func:`distillation_loss`).
    With ``autocast_bf16`` the decoder's matmuls run in bfloat16 (about 2x faster on CPUs with avx512_bf16);
    the head, the loss and the trainable weights stay float32.
    """
    if ranking_loss not in RANKING_LOSSES:
        raise ValueError(f"ranking_loss must be one of {RANKING_LOSSES}, got {ranking_loss!r}")
    device = next(model.parameters()).device
    decoder = model.get_decoder()
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=autocast_bf16):
        hidden = decoder(
            input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device), use_cache=False
        ).last_hidden_state
    picked = hidden[batch["rows"].to(device), batch["positions"].to(device)].float()
    targets = batch["targets"].to(device)
    binary = batch["binary"].to(device) if ranking_loss == "binary" else torch.zeros_like(targets, dtype=torch.bool)
    head = model.get_output_embeddings()
    cap = getattr(model.config, "final_logit_softcapping", None)

    def capped(logits: torch.Tensor) -> torch.Tensor:
        return torch.tanh(logits / cap) * cap if cap else logits

    loss = torch.nn.functional.cross_entropy(capped(head(picked[~binary]).float()), targets[~binary], reduction="sum")
    answers = batch["binary"].to(device) if ranking_loss in GROUPED_LOSSES else binary
    if bool(answers.any()):
        pairs = batch["pairs"].to(device)[answers]
        two = torch.einsum("nd,nkd->nk", picked[answers], head.weight[pairs].float())
        if getattr(head, "bias", None) is not None:
            two = two + head.bias[pairs].float()
        is_false = (targets[answers] == pairs[:, 1]).long()
        if ranking_loss == "binary":
            loss = loss + torch.nn.functional.cross_entropy(capped(two), is_false, reduction="sum")
        else:
            margins = capped(two)[:, 0] - capped(two)[:, 1]
            queries = batch["queries"].to(device)[answers]
            loss = loss + listwise_margin_loss(margins, queries, is_false == 0)
            if ranking_loss == "distill":
                loss = loss + distillation_loss(margins, queries, batch["teachers"].to(device)[answers])
    return loss, int(targets.numel())


def listwise_margin_loss(margins: torch.Tensor, queries: torch.Tensor, relevant: torch.Tensor) -> torch.Tensor:
    """Summed over positives: -log softmax of the positive's margin among it and its query's negatives.

    That is softplus(logsumexp(negative margins) - positive margin); queries without a positive or without
    a negative (and rows whose query is -1) add nothing.
    """
    total = margins.new_zeros(())
    for query in torch.unique(queries[queries >= 0]).tolist():
        mine = queries == query
        positives, negatives = margins[mine & relevant], margins[mine & ~relevant]
        if positives.numel() and negatives.numel():
            total = total + torch.nn.functional.softplus(torch.logsumexp(negatives, 0) - positives).sum()
    return total


def distillation_loss(
    margins: torch.Tensor, queries: torch.Tensor, teachers: torch.Tensor, temperature: float = TEACHER_TEMPERATURE
) -> torch.Tensor:
    """Summed over queries: KL(teacher || student) over a query's teacher-scored rows, where the teacher's
    distribution is softmax(cosine / ``temperature``) and the student's softmax(margin). Rows without a teacher
    score (NaN) and queries with fewer than two scored rows add nothing."""
    total = margins.new_zeros(())
    scored = ~torch.isnan(teachers)
    for query in torch.unique(queries[(queries >= 0) & scored]).tolist():
        mine = (queries == query) & scored
        if int(mine.sum()) < 2:
            continue
        target = torch.softmax(teachers[mine] / temperature, 0)
        total = total + torch.sum(target * (torch.log(target) - torch.log_softmax(margins[mine], 0)))
    return total


def checkpoints_in(directory: Path) -> list[Path]:
    found = [p for p in directory.glob(f"{CHECKPOINT_PREFIX}*") if p.name[len(CHECKPOINT_PREFIX) :].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(CHECKPOINT_PREFIX) :]))


class CheckpointError(ValueError):
    """A checkpoint directory that cannot be read back (truncated, corrupted or from another run)."""


ADAPTER_FILE = "adapter.safetensors"
STATE_FILE = "state.pt"


def save_checkpoint(directory: Path, step: int, elapsed: float, model: Any, optimizer: Any, keep: int) -> Path:
    """Write ``step-N`` atomically: a staging directory renamed into place, so a kill leaves the last one whole.

    The adapter goes to safetensors; the optimizer and RNG state hold only tensors and numbers, so they
    load back with ``torch.load(weights_only=True)``: no checkpoint ever needs pickle.
    """
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    target = directory / f"{CHECKPOINT_PREFIX}{step}"
    staging = directory / f".{target.name}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    adapter = {k: v.detach().contiguous().cpu() for k, v in get_peft_model_state_dict(model).items()}
    save_file(adapter, str(staging / ADAPTER_FILE))
    torch.save(
        {"step": step, "elapsed_s": elapsed, "optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state()},
        staging / STATE_FILE,
    )
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    for old in checkpoints_in(directory)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def load_checkpoint(path: Path, model: Any, optimizer: Any) -> tuple[int, float]:
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    try:
        adapter = load_file(str(path / ADAPTER_FILE))
        state = torch.load(path / STATE_FILE, map_location="cpu", weights_only=True)
        set_peft_model_state_dict(model, adapter)
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        return int(state["step"]), float(state.get("elapsed_s", 0.0))
    except Exception as error:  # any failure to read a checkpoint means the same thing to the user
        raise CheckpointError(
            f"checkpoint {str(path)!r} cannot be read ({type(error).__name__}: {error}); delete it to resume "
            "from the one before, or start a new --output"
        ) from None


@contextmanager
def frozen_linears_in_bfloat16(model: torch.nn.Module, enabled: bool = True) -> Iterator[int]:
    """Store the frozen float32 ``Linear`` weights in bfloat16 while the block runs; yields how many.

    bfloat16 autocast casts every float32 weight it multiplies to bfloat16, at every call of every step; stored
    in bfloat16 they are used as they are. The products are bit for bit the ones autocast computes (the same
    rounded weights), so losses and gradients do not change, and a step takes less time. Trainable weights
    (LoRA), norms, embeddings and the head stay float32. The float32 weights are put back on exit.
    """
    kept: list[tuple[torch.nn.Linear, torch.Tensor]] = []
    if enabled:
        head = model.get_output_embeddings()  # type: ignore[operator]  # a transformers model, typed as nn.Module
        for module in model.modules():
            if (
                isinstance(module, torch.nn.Linear)
                and module is not head
                and not module.weight.requires_grad
                and module.weight.dtype == torch.float32
            ):
                kept.append((module, module.weight.data))
                module.weight.data = module.weight.data.to(torch.bfloat16)
    try:
        yield len(kept)
    finally:
        for module, original in kept:
            module.weight.data = original


def run_loop(
    model: Any,
    rows: Sequence[TrainingRow],
    pad_id: int,
    settings: LoopSettings,
    checkpoint_dir: Path,
    log_path: Path,
    *,
    resume_from: Path | None = None,
    progress: bool = True,
    on_step: Callable[[int, float], None] | None = None,
) -> tuple[int, list[float]]:
    """Train ``model``'s trainable parameters; returns (steps done, logged losses).

    The run ends after ``settings.steps`` optimizer steps or, with ``time_budget_s``, when that much training
    time has passed (counted across resumes); the learning-rate schedule follows whichever is further along,
    so a time-boxed run still warms up and decays fully. Under bfloat16 autocast the frozen weights are
    stored in bfloat16 for the run (``bf16_frozen_weights``; :func:`frozen_linears_in_bfloat16`).
    """
    from tqdm.auto import tqdm

    learning_rate_factor(settings.scheduler, 0.5, 0.0)  # an unknown schedule fails before any work
    with frozen_linears_in_bfloat16(model, settings.autocast_bf16 and settings.bf16_frozen_weights):
        torch.manual_seed(settings.seed)
        model.train()
        parameters = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(parameters, lr=settings.learning_rate, weight_decay=settings.weight_decay)
        step, elapsed_before = load_checkpoint(resume_from, model, optimizer) if resume_from is not None else (0, 0.0)
        micro = settings.gradient_accumulation
        lengths = [len(r["input_ids"]) for r in rows]
        units = query_units(rows) if settings.ranking_loss in GROUPED_LOSSES else None
        unit_of: list[int] | None = None
        if units is not None:
            unit_of = [0] * len(rows)
            for number, unit in enumerate(units):
                for index in unit:
                    unit_of[index] = number
        stream = batch_stream(lengths, settings.batch_size, settings.seed, skip=step * micro, units=units)
        losses: list[float] = []
        window: list[tuple[float, int]] = []
        started = time.monotonic() - elapsed_before
        bar = tqdm(total=settings.steps, initial=step, disable=not progress, desc="rankrag train", unit="step")
        progress_done = run_progress(step, settings.steps, elapsed_before, settings.time_budget_s)
        while progress_done < 1.0:
            factor = learning_rate_factor(settings.scheduler, progress_done, settings.warmup)
            for group in optimizer.param_groups:
                group["lr"] = settings.learning_rate * factor
            micro_batches = [
                collate([rows[i] for i in piece], pad_id)
                for _ in range(micro)
                for piece in split_by_tokens(next(stream), lengths, settings.max_batch_tokens, unit_of)
            ]
            tokens = sum(int(b["targets"].numel()) for b in micro_batches)
            total = 0.0
            for batch in micro_batches:
                loss_sum, _ = assistant_token_loss(model, batch, settings.autocast_bf16, settings.ranking_loss)
                (loss_sum / max(tokens, 1)).backward()
                total += float(loss_sum.detach())
            grad_norm = float(torch.nn.utils.clip_grad_norm_(parameters, 1.0))
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            elapsed = time.monotonic() - started
            if (
                settings.time_budget_s is not None
                and elapsed_before == 0
                and step == 1
                and elapsed > settings.time_budget_s
            ):
                raise ValueError(
                    f"the time budget ({settings.time_budget_s / 60:.2f} min) is shorter than one training step "
                    f"({elapsed:.0f} s); give a larger --time-budget-minutes"
                )
            progress_done = run_progress(step, settings.steps, elapsed, settings.time_budget_s)
            finished = progress_done >= 1.0
            window.append((total, tokens))
            bar.update(1)
            if step % settings.logging_steps == 0 or finished:
                loss = sum(t for t, _ in window) / max(sum(n for _, n in window), 1)
                losses.append(loss)
                record = {
                    "step": step,
                    "loss": round(loss, 5),
                    "learning_rate": settings.learning_rate * factor,
                    "grad_norm": round(grad_norm, 4),
                    "elapsed_s": round(elapsed, 1),
                    "progress": round(progress_done, 4),
                }
                with log_path.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(record) + "\n")
                bar.set_postfix(loss=f"{loss:.4f}")
                window.clear()
            if step % settings.save_steps == 0 or finished:
                save_checkpoint(checkpoint_dir, step, elapsed, model, optimizer, settings.keep_checkpoints)
            if on_step is not None:
                on_step(step, total / max(tokens, 1))
        bar.close()
        return step, losses

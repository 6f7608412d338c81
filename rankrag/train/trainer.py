"""LoRA instruction tuning on the RankRAG blend (``rankrag train``).

Every example is rendered with the prompts used at inference: a ranking example is exactly the scorer's
token ids (:class:`rankrag.model.ranking_prompts.RankingEncoder`) followed by the answer token and the end-of-turn
token; a QA example is :func:`rankrag.model.answer_prompts.answer_prompt_ids` plus the answer; a retrieval-augmented
ranking example is :func:`rankrag.model.prompts.render_multi_ranking_prompt`. The loss covers the assistant's
tokens only. Training runs through trl's ``SFTTrainer`` on a peft LoRA model (QLoRA: a 4-bit base on CUDA).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import string
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, cast

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from rankrag.model import loading
from rankrag.model.answer_prompts import answer_prompt_ids, messages_prompt_ids
from rankrag.model.prompts import PromptTemplates, answer_lead, render_multi_ranking_prompt, resolve_style
from rankrag.model.ranking_prompts import RankingEncoder, answer_token_ids
from rankrag.model.scoring_options import ScoringOptions
from rankrag.train.blend import REPLAY_TASK, BlendExample
from rankrag.train.lean_loop import RANKING_LOSSES, TrainingRow
from rankrag.train.shapes import RANKRAG_SHAPE, render_shape

logger = logging.getLogger(__name__)

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
LOSS_LOG = "loss_log.jsonl"
TRAINING_ARGS = "training_args.json"
_YES_NO = {"yes", "no", "maybe"}
# "lean": our loop (LM head only on assistant positions; best on CPU). "trl": trl's SFTTrainer. "auto": trl
# on CUDA, lean elsewhere.
ENGINES = ("auto", "lean", "trl")
# "auto": bfloat16 autocast where the hardware computes it natively (CUDA with bf16, or a CPU with
# avx512_bf16 / AMX), float32 elsewhere. The LoRA weights and the optimizer stay float32 either way.
PRECISIONS = ("auto", "float32", "bfloat16")
# LoRA on the top fifth of SmolLM2-135M's 30 layers: with bfloat16 autocast 3.1x the examples per second of
# float32 on all layers, ranking as well per example seen as the top 10 (docs/training.md); None adapts every layer.
DEFAULT_LORA_LAYERS = 6


def cpu_has_native_bf16() -> bool:
    """True when this CPU has bfloat16 dot-product instructions (avx512_bf16 or AMX-BF16)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str) -> str:
    if precision != "auto":
        return precision
    if torch.cuda.is_available():
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    return "bfloat16" if cpu_has_native_bf16() else "float32"


@dataclass(frozen=True)
class TrainConfig:
    """Everything ``rankrag train`` needs. ``base=None`` is the embedded SmolLM2-135M-Instruct."""

    blend: str
    output: str
    base: str | None = None
    steps: int = 300
    batch_size: int = 8
    gradient_accumulation: int = 1
    learning_rate: float = 5e-4
    warmup: float = 0.05
    scheduler: str = "cosine"
    weight_decay: float = 0.0
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    max_passage_tokens: int = 160
    max_context_tokens: int = 128
    max_length: int = 1024
    save_steps: int = 50
    logging_steps: int = 5
    seed: int = 20240702
    quantization: str | None = None
    threads: int | None = None
    resume: bool = False
    save_dtype: str = "float16"
    limit: int | None = None
    engine: str = "auto"
    time_budget_minutes: float | None = None
    max_batch_tokens: int = 1536
    precision: str = "auto"
    lora_layers: int | None = DEFAULT_LORA_LAYERS
    init_adapter: str | None = None
    ranking_loss: str = "lm"

    def __post_init__(self) -> None:
        for name in (
            "steps",
            "batch_size",
            "gradient_accumulation",
            "lora_r",
            "lora_alpha",
            "save_steps",
            "logging_steps",
            "max_batch_tokens",
            "max_passage_tokens",
            "max_context_tokens",
            "max_length",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0 < self.learning_rate < 1:
            raise ValueError(f"learning_rate must be between 0 and 1, got {self.learning_rate}")
        if not 0 <= self.warmup < 1:
            raise ValueError(f"warmup is a fraction of the steps in [0, 1), got {self.warmup}")
        if not 0 <= self.lora_dropout < 1:
            raise ValueError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if self.quantization not in (None, "4bit"):
            raise ValueError(f"quantization must be None or '4bit' (QLoRA), got {self.quantization!r}")
        if self.time_budget_minutes is not None and self.time_budget_minutes <= 0:
            raise ValueError(f"time_budget_minutes must be positive, got {self.time_budget_minutes}")
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.lora_layers is not None and (not isinstance(self.lora_layers, int) or self.lora_layers < 1):
            raise ValueError(
                f"lora_layers must be a positive integer (or None for all layers), got {self.lora_layers!r}"
            )
        if self.init_adapter is not None and not Path(self.init_adapter, "adapter_config.json").is_file():
            raise ValueError(
                f"--init-adapter {self.init_adapter!r} is not an adapter directory (no adapter_config.json)"
            )
        if self.init_adapter is not None and not Path(self.init_adapter, loading.ADAPTER_SAFETENSORS).is_file():
            # The inference rule (rankrag.model.loading): adapters load from safetensors only, never pickle.
            raise ValueError(f"--init-adapter {self.init_adapter!r} has no {loading.ADAPTER_SAFETENSORS}")
        if self.ranking_loss not in RANKING_LOSSES:
            raise ValueError(f"ranking_loss must be one of {RANKING_LOSSES}, got {self.ranking_loss!r}")
        if self.ranking_loss != "lm" and resolve_engine(self.engine) != "lean":
            raise ValueError(f"ranking_loss {self.ranking_loss!r} needs the lean engine; trl trains the LM loss only")
        if self.save_dtype not in ("float16", "bfloat16", "float32"):
            raise ValueError(f"save_dtype must be float16, bfloat16 or float32, got {self.save_dtype!r}")


# ------------------------------------------------------------------------------------------- encoding
@dataclass(frozen=True)
class EncodedExample:
    prompt_ids: list[int]
    completion_ids: list[int]


def _normalize_answer(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


class ExampleEncoder:
    """Turns blend examples into (prompt ids, completion ids) exactly as the model sees them at inference."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        *,
        templates: PromptTemplates | None = None,
        max_passage_tokens: int = 160,
        max_context_tokens: int = 128,
    ) -> None:
        self.tokenizer = tokenizer
        self.templates = templates or PromptTemplates()
        self.max_context_tokens = max_context_tokens
        self.ranking = RankingEncoder(tokenizer, self.templates, ScoringOptions(max_passage_tokens=max_passage_tokens))
        self.lead = answer_lead(tokenizer, self.templates)
        self.adds_bos = resolve_style(tokenizer, self.templates) == "chatqa"
        if tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer has no end-of-turn (eos) token; cannot mark where answers end")
        self.end_ids = [int(tokenizer.eos_token_id)]
        self.answer_pair = answer_token_ids(tokenizer, self.templates)

    def completion(self, target: str) -> list[int]:
        return self.tokenizer.encode(self.lead + target, add_special_tokens=False) + self.end_ids

    def _cut(self, passages: Sequence[str]) -> list[str]:
        encoded = self.tokenizer(list(passages), add_special_tokens=False)["input_ids"]
        return [cast(str, self.tokenizer.decode(ids[: self.max_context_tokens])) for ids in encoded]

    def prompt(self, example: BlendExample) -> list[int] | None:
        """The prompt ids, or None when the answer was cut out of the (truncated) passages."""
        if example.task == "context_ranking":
            return self.ranking.encode(example.question, [example.passages[0]])[0]
        if example.task == "multi_ranking":
            text = render_multi_ranking_prompt(
                self.tokenizer, self.templates, example.question, self._cut(example.passages)
            )
            return self.tokenizer.encode(text, add_special_tokens=self.adds_bos)
        if example.task == REPLAY_TASK:
            return messages_prompt_ids(self.tokenizer, self.templates, [{"role": "user", "content": example.question}])
        cut = self._cut(example.passages)
        if example.task != "no_answer_qa" and _normalize_answer(example.target) not in _YES_NO:
            if _normalize_answer(example.target) not in _normalize_answer(" ".join(cut)):
                return None
        if example.shape != RANKRAG_SHAPE:
            # As the LangChain and LlamaIndex classes send it: role/content messages through the chat template.
            messages = render_shape(example.shape, example.question, cut, example.target, example.id or example.key())
            return messages_prompt_ids(self.tokenizer, self.templates, messages)
        return answer_prompt_ids(
            self.tokenizer, self.templates, example.question, list(example.passages), self.max_context_tokens
        )

    def encode(self, example: BlendExample) -> EncodedExample | None:
        prompt = self.prompt(example)
        if prompt is None:
            return None
        return EncodedExample(prompt, self.completion(example.target))


def encode_blend(
    encoder: ExampleEncoder, examples: Sequence[BlendExample], max_length: int
) -> tuple[list[TrainingRow], dict[str, int]]:
    """Rows with ``input_ids`` and ``completion_mask`` for SFTTrainer, and counts of what was dropped."""
    rows: list[TrainingRow] = []
    dropped = {"answer_not_in_context": 0, "too_long": 0}
    queries: dict[tuple[str, str, str], int] = {}
    for example in examples:
        encoded = encoder.encode(example)
        if encoded is None:
            dropped["answer_not_in_context"] += 1
            continue
        ids = encoded.prompt_ids + encoded.completion_ids
        if len(ids) > max_length:
            dropped["too_long"] += 1
            continue
        row: TrainingRow = {
            "input_ids": ids,
            "completion_mask": [0] * len(encoded.prompt_ids) + [1] * len(encoded.completion_ids),
        }
        if example.task == "context_ranking":
            row["answer_pair"] = list(encoder.answer_pair)  # for the lean loop's binary and listwise losses
            row["query"] = queries.setdefault((example.source, example.group, example.question), len(queries))
            if example.teacher is not None:
                row["teacher"] = example.teacher  # for the lean loop's distillation loss
        rows.append(row)
    return rows, dropped


# -------------------------------------------------------------------------------------------- model
def base_model_location(base: str | None) -> str:
    """A directory or hub id transformers (and trl) can load: a GGUF source is materialised first."""
    directory, gguf_file = loading.resolve_source(base)
    return str(loading.materialize_gguf(directory, gguf_file)) if gguf_file else directory


def load_trainable(config: TrainConfig) -> tuple[Any, PreTrainedTokenizerBase]:
    """The base model with fresh LoRA layers (float32 on CPU; 4-bit NF4 base with ``quantization='4bit'``)."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer

    location = base_model_location(config.base)
    tokenizer = AutoTokenizer.from_pretrained(location)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if config.quantization == "4bit":
        if not torch.cuda.is_available():
            raise loading.UnsupportedConfigurationError("QLoRA (--quantization 4bit) needs a CUDA GPU")
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        model = AutoModelForCausalLM.from_pretrained(
            location,
            dtype=dtype,
            quantization_config=loading.quantization_config("4bit", dtype),
            device_map={"": "cuda"},
            use_safetensors=True,
        )
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    else:
        dtype = (
            torch.float32
            if not torch.cuda.is_available()
            else (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32)
        )
        model = AutoModelForCausalLM.from_pretrained(location, dtype=dtype, use_safetensors=True)
    if config.init_adapter is not None:
        from peft import PeftModel

        with loading.peft_deprecations_silenced():
            return PeftModel.from_pretrained(model, config.init_adapter, is_trainable=True), tokenizer
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(LORA_TARGETS),
        layers_to_transform=top_layers(model, config.lora_layers),
        task_type="CAUSAL_LM",
    )
    with loading.peft_deprecations_silenced():
        return get_peft_model(model, lora), tokenizer


def top_layers(model: PreTrainedModel, count: int | None) -> list[int] | None:
    """Indices of the top ``count`` decoder layers (None: all layers).

    With LoRA on the upper layers only, nothing below them needs a gradient, so autograd records no graph
    for the lower layers and the backward pass stops at the lowest adapted layer.
    """
    if count is None:
        return None
    total = int(model.config.num_hidden_layers)
    return list(range(max(total - count, 0), total))


# ---------------------------------------------------------------------------------------- training
@dataclass
class TrainResult:
    adapter_dir: Path
    steps: int
    wall_seconds: float
    final_loss: float | None
    examples: int
    dropped: dict[str, int] = field(default_factory=dict)


def _loss_logger(path: Path) -> Any:
    from transformers import TrainerCallback

    class LossLogger(TrainerCallback):
        """Appends every logged training record (step, loss, learning rate, ...) to a JSONL file."""

        def __init__(self) -> None:
            self.started = time.monotonic()

        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
        ) -> None:
            if not logs or "loss" not in logs:
                return
            record = {"step": state.global_step, "elapsed_s": round(time.monotonic() - self.started, 1), **logs}
            with path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")

    return LossLogger()


def resolve_engine(engine: str) -> str:
    if engine == "auto":
        return "trl" if torch.cuda.is_available() else "lean"
    return engine


def latest_checkpoint(checkpoints: Path, engine: str) -> Path | None:
    """The newest checkpoint directory of ``engine`` under ``checkpoints``, or None."""
    if engine == "lean":
        from rankrag.train.lean_loop import checkpoints_in

        found = checkpoints_in(checkpoints)
        return found[-1] if found else None
    found = [p for p in checkpoints.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    return max(found, key=lambda p: int(p.name.split("-")[-1])) if found else None


def save_adapter(model: Any, directory: Path, dtype: str) -> None:
    """Save only the LoRA weights, cast to ``dtype`` (float16 halves the file; peft upcasts on load)."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    model.peft_config["default"].save_pretrained(str(directory))
    state = get_peft_model_state_dict(model)
    target = loading.DTYPES[dtype]
    save_file(
        {k: v.detach().to(target).contiguous().cpu() for k, v in state.items()},
        str(directory / "adapter_model.safetensors"),
        metadata={"format": "pt"},
    )


def _train_with_trl(
    config: TrainConfig,
    model: Any,
    tokenizer: Any,
    rows: list[TrainingRow],
    output: Path,
    resume_from: Path | None,
    progress: bool,
) -> tuple[Any, int, list[float]]:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    use_cuda = torch.cuda.is_available()
    args = SFTConfig(
        output_dir=str(output / "checkpoints"),
        max_steps=config.steps,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.scheduler,
        warmup_steps=config.warmup,
        weight_decay=config.weight_decay,
        max_grad_norm=1.0,
        logging_steps=config.logging_steps,
        save_steps=config.save_steps,
        save_total_limit=2,
        seed=config.seed,
        data_seed=config.seed,
        completion_only_loss=True,
        max_length=config.max_length,
        train_sampling_strategy="group_by_length",
        report_to="none",
        use_cpu=not use_cuda,
        bf16=use_cuda and torch.cuda.is_bf16_supported(),
        gradient_checkpointing=config.quantization == "4bit",
        dataloader_pin_memory=use_cuda,
        disable_tqdm=not progress,
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list([{k: row[k] for k in ("input_ids", "completion_mask")} for row in rows]),
        processing_class=tokenizer,
        callbacks=[_loss_logger(output / LOSS_LOG)],
    )
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return trainer.model, trainer.state.global_step, losses


def train(config: TrainConfig, examples: Sequence[BlendExample], *, progress: bool = True) -> TrainResult:
    """Fine-tune LoRA layers on ``examples``; the adapter lands in ``config.output``."""

    with torch_threads(config.threads):
        return _train(config, examples, progress=progress)


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` intra-op threads and restore the caller's count after, so that a training call made
    in a long-lived process (a notebook, a test session) does not change how that process scores afterwards."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _train(config: TrainConfig, examples: Sequence[BlendExample], *, progress: bool) -> TrainResult:
    from rankrag.train.lean_loop import LoopSettings, run_loop

    engine = resolve_engine(config.engine)
    output = Path(config.output)
    checkpoints = output / "checkpoints"
    resume_from = latest_checkpoint(checkpoints, engine) if config.resume else None
    if config.resume and resume_from is None:
        raise FileNotFoundError(f"--resume: no checkpoint under {str(checkpoints)!r}")
    if not config.resume and latest_checkpoint(checkpoints, engine) is not None:
        raise FileExistsError(
            f"{str(checkpoints)!r} already holds checkpoints; pass --resume to continue or choose another --output"
        )
    model, tokenizer = load_trainable(config)
    encoder = ExampleEncoder(
        tokenizer, max_passage_tokens=config.max_passage_tokens, max_context_tokens=config.max_context_tokens
    )
    chosen = list(examples)[: config.limit] if config.limit else list(examples)
    rows, dropped = encode_blend(encoder, chosen, config.max_length)
    if not rows:
        raise ValueError("no training example is left after encoding; check the blend file")
    output.mkdir(parents=True, exist_ok=True)
    checkpoints.mkdir(parents=True, exist_ok=True)
    precision = resolve_precision(config.precision)
    details = {**asdict(config), "engine": engine, "precision": precision, "examples": len(rows), "dropped": dropped}
    (output / TRAINING_ARGS).write_text(json.dumps(details, indent=2))
    started = time.monotonic()
    if engine == "lean":
        same_named = {f.name: getattr(config, f.name) for f in fields(LoopSettings) if hasattr(config, f.name)}
        settings = LoopSettings(
            **same_named,
            time_budget_s=config.time_budget_minutes * 60 if config.time_budget_minutes else None,
            autocast_bf16=precision == "bfloat16",
        )
        steps, losses = run_loop(
            model,
            rows,
            int(tokenizer.pad_token_id),
            settings,
            checkpoints,
            output / LOSS_LOG,
            resume_from=resume_from,
            progress=progress,
        )
        trained = model
    else:
        trained, steps, losses = _train_with_trl(config, model, tokenizer, rows, output, resume_from, progress)
    wall = time.monotonic() - started
    save_adapter(trained, output, config.save_dtype)
    summary = {
        "base": config.base or "embedded SmolLM2-135M-Instruct",
        "engine": engine,
        "precision": precision,
        "init_adapter": config.init_adapter,
        "steps": steps,
        "wall_seconds": round(wall, 1),
        "examples": len(rows),
        "final_loss": losses[-1] if losses else None,
    }
    (output / "train_summary.json").write_text(json.dumps(summary, indent=2))
    return TrainResult(
        adapter_dir=output,
        steps=steps,
        wall_seconds=wall,
        final_loss=losses[-1] if losses else None,
        examples=len(rows),
        dropped=dropped,
    )


def read_loss_log(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    with Path(path).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def plot_loss(log: str | os.PathLike[str], target: str | os.PathLike[str], smooth: int = 5) -> Path:
    """Loss per logged step (and a moving average) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_loss_log(log)
    steps = [r["step"] for r in records]
    losses = [r["loss"] for r in records]
    figure, axis = plt.subplots(figsize=(7, 4))
    axis.plot(steps, losses, alpha=0.4, label="training loss (logged)")
    if len(losses) >= smooth:
        averaged = [sum(losses[i - smooth + 1 : i + 1]) / smooth for i in range(smooth - 1, len(losses))]
        axis.plot(steps[smooth - 1 :], averaged, label=f"moving average ({smooth} logs)")
    axis.axhline(math.log(2) / 2, color="grey", linestyle=":", label="chance on True/False (ln 2 / 2 tokens)")
    axis.set_xlabel("optimizer step")
    axis.set_ylabel("loss (assistant tokens)")
    axis.legend()
    figure.tight_layout()
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path

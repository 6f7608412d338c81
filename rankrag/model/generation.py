"""Text generation on the shared model: greedy by default, stop sequences, streaming."""

from __future__ import annotations

import math
import numbers
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any, TypedDict, cast

import torch
from transformers import (
    GenerationMixin,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    StoppingCriteria,
    StoppingCriteriaList,
    TextIteratorStreamer,
)

from rankrag.defaults import DEFAULT_MAX_NEW_TOKENS
from rankrag.errors import PromptTooLongError


@dataclass(frozen=True)
class GenerationOptions:
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.max_new_tokens, bool) or not isinstance(self.max_new_tokens, numbers.Integral):
            raise TypeError(f"max_new_tokens must be an integer, got {self.max_new_tokens!r}")
        for name in ("temperature", "top_p"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if self.seed is not None and (
            isinstance(self.seed, bool)
            or not isinstance(self.seed, numbers.Integral)
            or not -(2**63) <= self.seed < 2**64
        ):
            raise ValueError(f"seed must be None or an integer in [-2**63, 2**64), got {self.seed!r}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise ValueError("stop sequences must be non-empty strings")


class GenerationOverrides(TypedDict, total=False):
    """Per-call generation keywords; None (or an absent key) keeps the option's value."""

    max_new_tokens: int | None
    temperature: float | None
    top_p: float | None
    stop: str | Sequence[str] | None
    seed: int | None


def generation_options(options: GenerationOptions | None = None, **overrides: object) -> GenerationOptions:
    """``options`` (default: :class:`GenerationOptions`) with the given keywords applied and checked; one string
    ``stop`` is one stop sequence. An unknown keyword raises TypeError."""
    fields = {name: value for name, value in overrides.items() if value is not None}
    if "stop" in fields:
        stop = fields["stop"] or ()
        fields["stop"] = (stop,) if isinstance(stop, str) else tuple(cast("Iterable[str]", stop))
    return replace(options or GenerationOptions(), **cast("dict[str, Any]", fields))  # checked in __post_init__


@dataclass
class Generation:
    """A finished generation with its token counts (for usage metadata)."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str = "stop"
    extra: dict[str, object] = field(default_factory=dict)


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to the first stop sequence, and whether one was found."""
    cuts = [text.find(s) for s in stop if s in text]
    return (text[: min(cuts)], True) if cuts else (text, False)


def _generate_kwargs(
    tokenizer: PreTrainedTokenizerBase, input_ids: torch.Tensor, options: GenerationOptions
) -> dict[str, object]:
    kwargs: dict[str, object] = {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "max_new_tokens": options.max_new_tokens,
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    if options.temperature > 0:
        kwargs.update(do_sample=True, temperature=options.temperature, top_p=options.top_p)
    else:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    if options.stop:
        kwargs.update(stop_strings=list(options.stop), tokenizer=tokenizer)
    return kwargs


def _seed(options: GenerationOptions) -> None:
    if options.seed is not None and options.temperature > 0:
        torch.manual_seed(options.seed)


def _input_tensor(model: PreTrainedModel, prompt_ids: Sequence[int]) -> torch.Tensor:
    return torch.tensor([list(prompt_ids)], dtype=torch.long, device=next(model.parameters()).device)


def check_prompt(model: PreTrainedModel, prompt_ids: Sequence[int], options: GenerationOptions) -> None:
    """Refuse prompts the model cannot take, before any compute: a clear error instead of a deep torch one,
    or of minutes of work (and memory) spent past the context window."""
    if not prompt_ids:
        raise ValueError("prompt_ids is empty; the prompt needs at least one token")
    vocabulary = model.get_input_embeddings().num_embeddings
    if not all(isinstance(i, numbers.Integral) and 0 <= i < vocabulary for i in prompt_ids):
        raise ValueError(f"prompt_ids must be token ids in [0, {vocabulary})")
    window = int(getattr(model.config, "max_position_embeddings", 0) or 0)
    if window and len(prompt_ids) + options.max_new_tokens > window:
        raise PromptTooLongError(
            f"the prompt has {len(prompt_ids)} tokens and max_new_tokens={options.max_new_tokens}, over the "
            f"model's context window of {window} tokens; pass fewer or shorter contexts or lower max_new_tokens"
        )


@torch.inference_mode()
def generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompt_ids: Sequence[int],
    options: GenerationOptions,
    weights: Callable[[], AbstractContextManager[None]] = nullcontext,
) -> Generation:
    """Generate from ``prompt_ids``; forward passes run inside ``weights()`` (see :mod:`adapter_bypass`)."""
    check_prompt(model, prompt_ids, options)
    _seed(options)
    input_ids = _input_tensor(model, prompt_ids)
    with weights():
        output = cast(GenerationMixin, model).generate(**_generate_kwargs(tokenizer, input_ids, options))
    new_tokens = output[0, input_ids.shape[1] :]
    text = cast(str, tokenizer.decode(new_tokens, skip_special_tokens=True))
    text, stopped = cut_at_stop(text, options.stop)
    hit_eos = len(new_tokens) > 0 and int(new_tokens[-1]) == tokenizer.eos_token_id
    finish = "stop" if stopped or hit_eos or len(new_tokens) < options.max_new_tokens else "length"
    return Generation(
        text=text.strip() if not options.stop else text,
        prompt_tokens=len(prompt_ids),
        completion_tokens=len(new_tokens),
        finish_reason=finish,
    )


class _StopFilter:
    """Holds back streamed text that could be the start of a stop sequence, and ends at a full one."""

    def __init__(self, stop: Sequence[str]):
        self.stop = tuple(stop)
        self.pending = ""
        self.done = False

    def feed(self, chunk: str) -> str:
        self.pending += chunk
        text, stopped = cut_at_stop(self.pending, self.stop)
        if stopped:
            self.done = True
            self.pending = ""
            return text
        hold = max((k for s in self.stop for k in range(len(s), 0, -1) if self.pending.endswith(s[:k])), default=0)
        out, self.pending = self.pending[: len(self.pending) - hold], self.pending[len(self.pending) - hold :]
        return out

    def flush(self) -> str:
        out, self.pending = self.pending, ""
        return out


class _EdgeTrimmer:
    """Streams text without its leading and trailing whitespace, as :func:`generate` returns it."""

    def __init__(self) -> None:
        self.started = False
        self.held = ""

    def feed(self, chunk: str) -> str:
        if not self.started:
            chunk = chunk.lstrip()
            if not chunk:
                return ""
            self.started = True
        text = self.held + chunk
        body = text.rstrip()
        self.held = text[len(body) :]  # released once more text follows, dropped at the end
        return body


class _Cancelled(StoppingCriteria):
    """Ends a generation as soon as its consumer stops reading the stream."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: object) -> torch.Tensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


def stream(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompt_ids: Sequence[int],
    options: GenerationOptions,
    weights: Callable[[], AbstractContextManager[None]] = nullcontext,
) -> Iterator[str]:
    """Yield text chunks as they are generated; generation runs in a worker thread, inside ``weights()``."""
    check_prompt(model, prompt_ids, options)
    _seed(options)
    input_ids = _input_tensor(model, prompt_ids)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
    kwargs = _generate_kwargs(tokenizer, input_ids, options)
    cancelled = threading.Event()
    kwargs["stopping_criteria"] = StoppingCriteriaList([_Cancelled(cancelled)])
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with torch.inference_mode(), weights():
                cast(GenerationMixin, model).generate(**kwargs, streamer=streamer)
        except BaseException as error:  # surfaced to the consumer below
            errors.append(error)
            streamer.end()

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    try:
        yield from stop_filtered(streamer, options.stop)
    finally:
        cancelled.set()  # a consumer that stops early (break, close) must not wait for max_new_tokens
        worker.join()
    if errors:
        raise errors[0]


def stop_filtered(chunks: Iterable[str], stop: Sequence[str]) -> Iterator[str]:
    """A generated text stream as :func:`generate` returns the text: cut before the first stop sequence, and
    without surrounding whitespace when no stop sequence is given. Stops reading at the stop sequence."""
    stops = _StopFilter(stop)
    trim = (lambda text: text) if stop else _EdgeTrimmer().feed
    for chunk in chunks:
        text = trim(stops.feed(chunk))
        if text:
            yield text
        if stops.done:
            return
    tail = trim(stops.flush())
    if tail:
        yield tail

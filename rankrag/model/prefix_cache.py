"""Shared-prefix KV caching for ranking prompts: the part every passage of a query shares runs once.

A ranking prompt is ``prefix + passage + suffix``. The prefix (system text and ``Passage:`` header with
the paper's passage-first prompt; also the question with ``PromptTemplates(question_first=True)``) is
identical for every passage, so its keys and values are computed once and broadcast over each batch of
``passage + suffix`` tails. Tails are right padded and placed at positions ``len(prefix)...``, so every
real token sees exactly the positions and context it has in the full prompt: scores equal the uncached
ones up to float rounding.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import DynamicCache, PreTrainedConfig, PreTrainedModel
from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer
from transformers.modeling_outputs import BaseModelOutputWithPast

from rankrag.model import scoring
from rankrag.model.scoring import RankingEncoder, ScoringOptions


@dataclass(frozen=True)
class SharedPrefixPrompts:
    """The ranking prompts of one query as ``prefix + tail``; the prefix is the same for every passage."""

    prefix: tuple[int, ...]
    tails: tuple[tuple[int, ...], ...]

    def full(self) -> list[list[int]]:
        """The complete prompts, token for token what :meth:`RankingEncoder.encode` returns."""
        return [list(self.prefix + tail) for tail in self.tails]


def split_prompts(encoder: RankingEncoder, question: str, passages: Sequence[str]) -> SharedPrefixPrompts:
    """Encode like ``encoder.encode`` (same truncation and errors), keeping the shared prefix apart."""
    prefix, suffix = encoder.prefix_and_suffix(question)
    budget = encoder.passage_budget(prefix, suffix)
    tails = tuple(tuple(ids + suffix) for ids in encoder.encode_passages(passages, budget))
    return SharedPrefixPrompts(prefix=tuple(prefix), tails=tails)


@dataclass(frozen=True)
class PrefixState:
    """Keys and values of a prefix for batch size 1, ready to be broadcast over a batch of tails."""

    cache: DynamicCache
    length: int
    config: PreTrainedConfig

    def expanded(self, batch_size: int) -> DynamicCache:
        """A fresh cache holding the prefix for ``batch_size`` rows; the prefix's own cache is left untouched.

        Built with the public ``DynamicCache(ddp_cache_data=..., config=...)`` constructor, which fills each layer
        through ``update`` and so copies the expanded (zero-copy) views into ``batch_size`` rows: transformers has no
        public way to hand a layer views. Measured negligible: for SmolLM2-135M, the 60-token default prefix and 16
        rows (44 MB in float32) it takes ~27 ms, 0.2% of that batch's ~12.6 s forward pass (one CPU thread).
        """
        pairs = []
        for layer in self.cache.layers:
            assert isinstance(layer, DynamicLayer) and layer.keys is not None and layer.values is not None
            pairs.append((layer.keys.expand(batch_size, -1, -1, -1), layer.values.expand(batch_size, -1, -1, -1)))
        return DynamicCache(ddp_cache_data=pairs, config=self.config)


def _broadcastable(cache: object) -> bool:
    """Only plain key/value layers still holding every token they saw can be rebuilt for a batch; recurrent,
    shared-KV, indexed or quantized layers, and sliding windows the prefix overflowed, fall back to full prompts."""
    layers = getattr(cache, "layers", None) or ()
    return (
        isinstance(cache, DynamicCache)
        and bool(layers)
        and all(
            type(layer) in (DynamicLayer, DynamicSlidingWindowLayer)
            and layer.is_initialized
            and layer.get_seq_length() == layer.keys.shape[-2]
            for layer in layers
        )
    )


# transformers 5.24 renamed the forward keyword ``past_key_values=`` to ``cache=`` (the old name warns and goes in
# 5.40); 5.0 only knows ``past_key_values=`` and would swallow ``cache=`` into ``**kwargs``. The library renamed the
# output field along with it, which tells the versions apart for forwards that declare neither name.
_LIBRARY_CACHE_KEYWORD = (
    "cache" if "cache" in {field.name for field in dataclasses.fields(BaseModelOutputWithPast)} else "past_key_values"
)


@functools.cache
def _cache_keyword(decoder_type: type[torch.nn.Module]) -> str:
    """The keyword this decoder's forward takes its cache by (looked up once per class)."""
    parameters = inspect.signature(decoder_type.forward).parameters  # follows the decorators' __wrapped__
    for name in ("cache", "past_key_values"):
        if name in parameters:
            return name
    return _LIBRARY_CACHE_KEYWORD


def _cache_argument(decoder: torch.nn.Module, cache: DynamicCache) -> dict[str, DynamicCache]:
    return {_cache_keyword(type(decoder)): cache}  # type: ignore[arg-type]


def _device(model: PreTrainedModel) -> torch.device:
    return next(model.parameters()).device


@torch.inference_mode()
def compute_prefix(model: PreTrainedModel, prefix: Sequence[int]) -> PrefixState | None:
    """Run the prefix once; None when it is empty or the model's cache cannot be shared across rows."""
    if not prefix:
        return None
    decoder = model.get_decoder()
    input_ids = torch.tensor([list(prefix)], dtype=torch.long, device=_device(model))
    # The cache is filled in place (``update``), so the output's cache field (renamed across versions) is not read.
    cache = DynamicCache(config=model.config)
    decoder(input_ids=input_ids, use_cache=True, **_cache_argument(decoder, cache))
    if not _broadcastable(cache):
        return None
    return PrefixState(cache=cache, length=len(prefix), config=model.config)


@torch.inference_mode()
def last_hidden_states_after_prefix(
    model: PreTrainedModel, state: PrefixState, tails: Sequence[Sequence[int]], pad_id: int
) -> torch.Tensor:
    """Hidden state at the last token of ``prefix + tail`` for each tail, reusing the prefix's keys/values."""
    decoder = model.get_decoder()
    device = _device(model)
    lengths = torch.tensor([len(tail) for tail in tails], device=device)
    width = int(lengths.max())
    input_ids = torch.full((len(tails), width), pad_id, dtype=torch.long, device=device)
    for row, tail in enumerate(tails):
        input_ids[row, : len(tail)] = torch.tensor(tail, dtype=torch.long, device=device)
    tail_mask = torch.arange(width, device=device)[None, :] < lengths[:, None]
    prefix_mask = torch.ones((len(tails), state.length), dtype=torch.bool, device=device)
    attention_mask = torch.cat([prefix_mask, tail_mask], dim=1).long()
    # Right padding: every row's real tokens start right after the prefix, at the same positions.
    position_ids = (state.length + torch.arange(width, device=device)).expand(len(tails), -1)
    hidden = decoder(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        use_cache=True,
        **_cache_argument(decoder, state.expanded(len(tails))),
    ).last_hidden_state
    return hidden[torch.arange(len(tails), device=device), lengths - 1]


def score_shared_prefix(
    model: PreTrainedModel,
    requests: Sequence[SharedPrefixPrompts],
    *,
    true_id: int,
    false_id: int,
    pad_id: int,
    options: ScoringOptions,
) -> list[list[float]]:
    """P(True) for every tail of every request. Requests with the same prefix share its cache and batches
    (with the passage-first prompt that is every query); unsupported models score the full prompts."""
    results = [[0.0] * len(request.tails) for request in requests]
    by_prefix: dict[tuple[int, ...], list[int]] = {}
    for number, request in enumerate(requests):
        by_prefix.setdefault(request.prefix, []).append(number)
    for prefix, numbers in by_prefix.items():
        owners = [(number, position) for number in numbers for position in range(len(requests[number].tails))]
        tails = [requests[number].tails[position] for number, position in owners]
        state = compute_prefix(model, prefix)
        if state is None:
            scores = scoring.score_encoded(
                model,
                [list(prefix + tail) for tail in tails],
                true_id=true_id,
                false_id=false_id,
                pad_id=pad_id,
                options=options,
            )
        else:
            scores = [0.0] * len(tails)
            for indices in scoring.length_sorted_batches(tails, options.batch_size):
                hidden = last_hidden_states_after_prefix(model, state, [tails[i] for i in indices], pad_id)
                probabilities = scoring.true_probabilities(model, hidden, true_id, false_id, options.normalization)
                for index, value in zip(indices, probabilities.tolist()):
                    scores[index] = float(value)
        for (number, position), value in zip(owners, scores):
            results[number][position] = value
    return results

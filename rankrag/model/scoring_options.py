"""How passages are scored: :class:`ScoringOptions` and the P(True) normalizations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast

Normalization = Literal["binary", "vocab"]
NORMALIZATIONS: tuple[Normalization, ...] = ("binary", "vocab")


@dataclass(frozen=True)
class ScoringOptions:
    """How passages are scored.

    ``normalization="binary"`` (default) is softmax over the two answer tokens, P(True | True or False),
    which uses the whole [0, 1] range even for models that put little mass on either word.
    ``"vocab"`` is P(True) under the full next-token distribution, the paper's literal definition.
    ``prefix_cache`` computes the prompt part shared by all passages of a query once and reuses its
    keys and values for every batch (:mod:`rankrag.model.prefix_kv`; same scores up to float rounding).
    ``coalesce`` lets concurrent async calls on one model share forward passes (:mod:`rankrag.model.coalescer`).
    ``batch_size``, ``prefix_cache`` and ``coalesce`` apply to in-process models only: a server batches itself.
    """

    batch_size: int = 16
    max_length: int = 2048
    max_passage_tokens: int = 384
    normalization: Normalization = "binary"
    truncate: bool = True
    prefix_cache: bool = True
    coalesce: bool = True


def check_normalization(normalization: str) -> Normalization:
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {normalization!r}; choose one of {NORMALIZATIONS}")
    return cast(Normalization, normalization)

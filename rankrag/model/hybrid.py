"""Hybrid reranking: the LLM's P(True), a dense similarity and the first stage in one score, and the cascade.

Each signal is min-max normalised within the query (the first stage's order stands in for it when the
retriever gave no scores), and the hybrid score is their convex combination with weights calibrated per
kind of first stage: ``lexical`` (BM25 and other keyword scores: three signals) or ``dense`` (a vector
retriever whose own similarity is the dense signal: two signals). The cascade ranks all N candidates by the
cheap signals alone and sends only the best ``cascade`` of them to the LLM; the others follow, in cheap order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

FirstStageKind = Literal["lexical", "dense"]
FIRST_STAGE_KINDS: tuple[FirstStageKind, ...] = ("lexical", "dense")


@dataclass(frozen=True)
class HybridWeights:
    """Weights of the three normalised signals (they need not sum to 1), and how many candidates the LLM scores
    (``cascade``; None for all)."""

    llm: float
    dense: float
    first_stage: float
    cascade: int | None = None

    def __post_init__(self) -> None:
        values = (self.llm, self.dense, self.first_stage)
        if not all(isinstance(v, (int, float)) and math.isfinite(v) and v >= 0 for v in values) or sum(values) <= 0:
            raise ValueError(f"hybrid weights must be finite, >= 0 and not all 0; got {values}")
        if self.cascade is not None and (
            isinstance(self.cascade, bool) or not isinstance(self.cascade, int) or self.cascade < 1
        ):
            raise ValueError(f"cascade must be None or a positive integer, got {self.cascade!r}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> HybridWeights:
        return cls(
            llm=float(record["llm"]),
            dense=float(record["dense"]),
            first_stage=float(record["first_stage"]),
            cascade=None if record.get("cascade") is None else int(record["cascade"]),
        )


def check_first_stage_kind(kind: str) -> FirstStageKind:
    if kind not in FIRST_STAGE_KINDS:
        raise ValueError(f"unknown first_stage {kind!r}; choose one of {FIRST_STAGE_KINDS}")
    return "dense" if kind == "dense" else "lexical"


def min_max(values: Sequence[float]) -> list[float]:
    """``values`` on [0, 1] within the query; all equal gives all 1.0 (the signal then ranks nothing)."""
    if not values:
        return []
    if not all(math.isfinite(v) for v in values):
        raise ValueError("scores must be finite numbers; got NaN or infinity")
    low, high = min(values), max(values)
    if high == low:
        return [1.0] * len(values)
    span = high / 2 - low / 2  # halves keep the span finite near the float limits
    return [(float(v) / 2 - low / 2) / span for v in values]


def combine(signals: Sequence[tuple[float, Sequence[float] | None]], n: int) -> list[float]:
    """Sum of ``weight * min_max(signal)`` over the signals present, divided by the weights present."""
    present = [(weight, min_max(values)) for weight, values in signals if values is not None and weight > 0]
    total = sum(weight for weight, _ in present)
    if total <= 0:
        return [0.0] * n
    return [sum(weight * values[i] for weight, values in present) / total for i in range(n)]


def cheap_scores(weights: HybridWeights, dense: Sequence[float] | None, first: Sequence[float], n: int) -> list[float]:
    """The cascade's first cut: the hybrid score without the LLM."""
    cheap = combine([(weights.dense, dense), (weights.first_stage, first)], n)
    return cheap if any(weight > 0 for weight in (weights.dense, weights.first_stage)) else list(first)


def cascade_selection(cascade: int | None, cheap: Sequence[float], eligible: Sequence[int]) -> list[int]:
    """Positions the LLM scores: the best ``cascade`` of ``eligible`` by the cheap score (all when None)."""
    if cascade is None or len(eligible) <= cascade:
        return list(eligible)
    return sorted(sorted(eligible, key=lambda i: (-cheap[i], i))[:cascade])


def hybrid_ranking(
    weights: HybridWeights,
    llm: Mapping[int, float],
    dense: Sequence[float] | None,
    first: Sequence[float],
    cheap: Sequence[float],
) -> list[tuple[int, float]]:
    """``(position, score)`` best first, ties in input order. The positions the LLM scored (``llm``) come first,
    by the hybrid score on [0, 1] (signals min-max normalised among them); the others follow in cheap order,
    with ``cheap - 1`` as their score, so every one of them stays below every LLM-scored position."""
    scored = sorted(llm)
    signals = [
        (weights.llm, [llm[i] for i in scored]),
        (weights.dense, None if dense is None else [dense[i] for i in scored]),
        (weights.first_stage, [first[i] for i in scored]),
    ]
    ranked = list(zip(scored, combine(signals, len(scored))))
    chosen = set(scored)
    ranked += [(i, cheap[i] - 1.0) for i in range(len(cheap)) if i not in chosen]
    return sorted(ranked, key=lambda item: (-item[1], item[0]))

"""Calibrated relevance: the probability that a passage is relevant, which is what the default ranking orders by and
what ``relevance_score`` and ``score_threshold`` mean.

A logistic model over signals that keep their meaning from one query to the next, the LLM's P(True) as a logit and the
dense cosine as it is, and two within-query features whose weights say how much the comparison with the query's
other passages adds: the first stage (its min-max normalised score, or ``1 - rank / n`` without scores) and
``dense_in_query``, the cosine min-max normalised over the passages the LLM scores. Fitted per kind of first stage on
calib labels (``rankrag calibrate``, :mod:`rankrag.eval.relevance_fit`), three ways: with every signal
(``full``), without the LLM (``cheap``: the cascade's first cut, and the probability of the passages the cascade
does not send to the LLM) and without a dense signal (``no_dense``). Unlike the min-max hybrid, the LLM's score
enters as it is, never relative to the other passages, so an irrelevant passage scores low however it compares with
the others.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FEATURES = ("llm", "dense", "first_stage", "dense_in_query")
# P(True) is clipped here before its logit: float32 softmax gives exact 0/1 on some prompts.
PROBABILITY_FLOOR = 1e-6


def llm_logit(probability: float) -> float:
    p = min(max(float(probability), PROBABILITY_FLOOR), 1.0 - PROBABILITY_FLOOR)
    return math.log(p / (1.0 - p))


def sigmoid(value: float) -> float:
    if value >= 0:
        return 1.0 / (1.0 + math.exp(-value))
    exponential = math.exp(value)
    return exponential / (1.0 + exponential)


@dataclass(frozen=True)
class LogisticModel:
    """``P(relevant) = sigmoid(bias + sum(weights[f] * feature f))``; ``llm`` is fed as a logit."""

    bias: float
    weights: Mapping[str, float]

    def __post_init__(self) -> None:
        unknown = set(self.weights) - set(FEATURES)
        if unknown:
            raise ValueError(f"unknown relevance feature(s) {sorted(unknown)}; features are {FEATURES}")
        if not all(math.isfinite(v) for v in (self.bias, *self.weights.values())):
            raise ValueError("relevance coefficients must be finite numbers")

    def probability(
        self,
        llm: float | None = None,
        dense: float | None = None,
        first_stage: float = 0.0,
        dense_in_query: float | None = None,
    ) -> float:
        values = {
            "llm": None if llm is None else llm_logit(llm),
            "dense": dense,
            "first_stage": first_stage,
            "dense_in_query": dense_in_query,
        }
        total = self.bias
        for feature, weight in self.weights.items():
            value = values[feature]
            if value is None:
                raise ValueError(f"this relevance model needs the {feature!r} signal")
            total += weight * value
        return sigmoid(total)

    def as_dict(self) -> dict[str, Any]:
        return {"bias": self.bias, "weights": dict(self.weights)}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> LogisticModel:
        return cls(bias=float(record["bias"]), weights={k: float(v) for k, v in dict(record["weights"]).items()})


@dataclass(frozen=True)
class RelevanceModels:
    """The three models of one kind of first stage, and how many passages the LLM scores (``cascade``; None: all)."""

    full: LogisticModel
    cheap: LogisticModel
    no_dense: LogisticModel
    cascade: int | None = None

    def __post_init__(self) -> None:
        if self.cascade is not None and (
            isinstance(self.cascade, bool) or not isinstance(self.cascade, int) or self.cascade < 1
        ):
            raise ValueError(f"cascade must be None or a positive integer, got {self.cascade!r}")
        if {"llm", "dense_in_query"} & set(self.cheap.weights) or {"dense", "dense_in_query"} & set(
            self.no_dense.weights
        ):
            raise ValueError(
                "the cheap model takes no LLM score (nor dense_in_query, which is over the LLM's passages) and the "
                "no_dense model no dense score"
            )

    def as_dict(self) -> dict[str, Any]:
        return {
            "full": self.full.as_dict(),
            "cheap": self.cheap.as_dict(),
            "no_dense": self.no_dense.as_dict(),
            "cascade": self.cascade,
        }

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> RelevanceModels:
        return cls(
            full=LogisticModel.from_dict(record["full"]),
            cheap=LogisticModel.from_dict(record["cheap"]),
            no_dense=LogisticModel.from_dict(record["no_dense"]),
            cascade=None if record.get("cascade") is None else int(record["cascade"]),
        )

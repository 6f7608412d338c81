"""How :meth:`RankRAGModel.rerank` turns its signals into one ranking, in two halves around the LLM's scoring.

:func:`plan_ranking` takes the first stage and the dense similarity and decides which passages the LLM scores (all
of them, or the cascade's best ``HybridWeights.cascade`` by the cheap signals); :meth:`RankingPlan.ranking`
takes the LLM's scores of those passages and returns the ranking. Three rules:

- **relevance** (the default: ``relevance`` given): each passage's calibrated probability of being relevant
  (:mod:`rankrag.model.relevance`); the cascade picks the passages the LLM scores by the probability from the cheap
  signals, which is also the probability of the passages it leaves out, ranked after every LLM-scored one;
- **hybrid** (``weights`` given, and a dense similarity present unless ``weights.dense`` is 0):
  :func:`rankrag.model.hybrid.hybrid_ranking`;
- **fused** (otherwise): ``alpha * P(True) + (1 - alpha) * first stage``, every passage scored
  (:mod:`rankrag.model.fusion`).

Blank passages are never scored and never ranked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypedDict

from rankrag.model import fusion, hybrid
from rankrag.model.hybrid import FirstStageKind, HybridWeights
from rankrag.model.passages import is_blank
from rankrag.model.relevance import RelevanceModels
from rankrag.model.results import ScoredPassage

LLM_SCORE = "llm_score"
DENSE_SCORE = "dense_score"


class RankingKeywords(TypedDict, total=False):
    """How :meth:`RankRAGModel.rerank` combines the signals (see there)."""

    first_stage: FirstStageKind
    dense_scores: Sequence[float] | None
    alpha: float | None
    weights: HybridWeights | None


class RerankKeywords(RankingKeywords, total=False):
    """The keywords of :meth:`RankRAGModel.rerank`."""

    top_k: int | None
    batch_size: int | None
    first_stage_scores: Sequence[float] | None


@dataclass(frozen=True)
class RankingPlan:
    """The non-blank passages (``positions`` in the input), their signals, and which of them the LLM scores
    (``selected``, indexes into ``positions``). ``weights`` None: the fused rule at ``alpha``."""

    passages: list[str]
    positions: list[int]
    first_stage: list[float]
    dense: list[float] | None
    weights: HybridWeights | None
    alpha: float
    cheap: list[float]
    selected: list[int]
    relevance: RelevanceModels | None = None

    @property
    def llm_passages(self) -> list[str]:
        """The passages to score with the LLM, in input order."""
        return [self.passages[self.positions[j]] for j in self.selected]

    def ranking(self, llm_scores: Sequence[float], top_k: int | None = None) -> list[ScoredPassage]:
        """The ranking, best first (ties in input order), from the LLM's scores of :attr:`llm_passages`.

        ``ScoredPassage.metadata`` holds ``llm_score`` (P(True); None where the cascade did not score the passage)
        and ``dense_score`` (the dense similarity as given or computed; None without one)."""
        if len(llm_scores) != len(self.selected):
            raise ValueError(f"got {len(llm_scores)} LLM scores for {len(self.selected)} passages")
        llm = dict(zip(self.selected, (float(s) for s in llm_scores)))
        if self.relevance is not None:
            ordered = self._by_relevance(self.relevance, llm)
        elif self.weights is None:
            ordered = [
                (j, self.alpha * llm[j] + (1.0 - self.alpha) * self.first_stage[j] if self.alpha < 1.0 else llm[j])
                for j in self.selected
            ]
            ordered.sort(key=lambda item: (-item[1], item[0]))
        else:
            ordered = hybrid.hybrid_ranking(self.weights, llm, self.dense, self.first_stage, self.cheap)
        ranked = [
            ScoredPassage(
                text=self.passages[self.positions[j]],
                score=score,
                index=self.positions[j],
                metadata={LLM_SCORE: llm.get(j), DENSE_SCORE: None if self.dense is None else self.dense[j]},
            )
            for j, score in ordered
        ]
        return ranked[:top_k] if top_k is not None else ranked

    def _by_relevance(self, models: RelevanceModels, llm: dict[int, float]) -> list[tuple[int, float]]:
        """LLM-scored passages by their probability, then the others by their cheap probability."""
        if self.dense is None:
            scored = [(j, models.no_dense.probability(llm=p, first_stage=self.first_stage[j])) for j, p in llm.items()]
        else:
            dense = self.dense
            in_query = dict(zip(llm, hybrid.min_max([dense[j] for j in llm])))
            scored = [
                (
                    j,
                    models.full.probability(
                        llm=p, dense=dense[j], first_stage=self.first_stage[j], dense_in_query=in_query[j]
                    ),
                )
                for j, p in llm.items()
            ]
        others = [(j, self.cheap[j]) for j in range(len(self.positions)) if j not in llm]
        return sorted(scored, key=lambda item: (-item[1], item[0])) + sorted(
            others, key=lambda item: (-item[1], item[0])
        )


def check_scores(scores: Sequence[float], n: int, name: str) -> list[float]:
    if len(scores) != n:
        raise ValueError(f"got {len(scores)} {name} for {n} passages; give one per passage")
    values = [float(s) for s in scores]
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{name} must be finite numbers; got NaN or infinity")
    return values


def plan_ranking(
    passages: Sequence[str],
    *,
    first_stage_scores: Sequence[float] | None,
    dense: Sequence[float] | None,
    weights: HybridWeights | None,
    alpha: float,
    relevance: RelevanceModels | None = None,
) -> RankingPlan:
    """The plan for ``passages``. ``first_stage_scores``: one per passage (higher is better), or None for the input
    order; ``dense``: one similarity per non-blank passage, in input order, or None; ``relevance``: rank by the
    calibrated probability (``weights`` and ``alpha`` then play no part)."""
    items = list(passages)
    positions = [i for i, text in enumerate(items) if not is_blank(text)]
    first_all = fusion.normalized_first_stage(len(items), first_stage_scores)
    first = [first_all[i] for i in positions]
    dense_values = None if dense is None else check_scores(dense, len(positions), "dense scores")
    everything = list(range(len(positions)))
    if relevance is not None:
        if dense_values is None:
            return RankingPlan(items, positions, first, None, None, alpha, first, everything, relevance)
        cheap = [relevance.cheap.probability(dense=d, first_stage=f) for d, f in zip(dense_values, first)]
        selected = hybrid.cascade_selection(relevance.cascade, cheap, everything)
        return RankingPlan(items, positions, first, dense_values, None, alpha, cheap, selected, relevance)
    if weights is None or (dense_values is None and weights.dense > 0):
        return RankingPlan(items, positions, first, dense_values, None, alpha, first, everything)
    cheap = hybrid.cheap_scores(weights, dense_values, first, len(positions))
    selected = hybrid.cascade_selection(weights.cascade, cheap, everything)
    return RankingPlan(items, positions, first, dense_values, weights, alpha, cheap, selected)

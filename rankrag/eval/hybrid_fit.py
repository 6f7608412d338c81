"""Fitting the hybrid weights and the cascade size on the ``calib`` split, per kind of first stage.

Every candidate of every calib query carries three signals (LLM P(True), dense cosine, first-stage score).
For a ``lexical`` first stage the candidates keep the retriever's order and scores; for a ``dense`` first stage
they are re-ordered by the dense similarity, which is then also the first-stage signal (so its weight is 0).
The weights are the point of a simplex grid (step 0.1) with the best mean nDCG@10 over the calib queries, ties
to more first-stage weight (the safer side); the grid holds the first stage alone, so the fit never ranks
the calib queries below it. The cascade size is the smallest of :data:`CASCADE_SIZES` within
:data:`CASCADE_TOLERANCE` of scoring every candidate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from rankrag.eval.metrics import mean_ranking_metrics
from rankrag.model import fusion, hybrid
from rankrag.model.hybrid import FirstStageKind, HybridWeights

WEIGHT_STEP = 0.1
CASCADE_SIZES = (10, 20, 30, 50)
CASCADE_TOLERANCE = 0.005
METRIC = "ndcg@10"


@dataclass(frozen=True)
class SignalQuery:
    """One query's candidates with their three signals, in first-stage order."""

    qid: str
    pids: list[str]
    llm: list[float]
    dense: list[float]
    first_stage_scores: list[float] | None

    def as_first_stage(self, kind: FirstStageKind) -> SignalQuery:
        """The query as that kind of first stage hands it over (``dense``: re-ordered by the dense similarity)."""
        if kind == "lexical":
            return self
        order = sorted(range(len(self.pids)), key=lambda i: (-self.dense[i], i))
        dense = [self.dense[i] for i in order]
        return SignalQuery(self.qid, [self.pids[i] for i in order], [self.llm[i] for i in order], dense, dense)


def hybrid_pids(query: SignalQuery, weights: HybridWeights) -> list[str]:
    """The candidate ids as ``RankRAGModel.rerank`` orders them with these weights (LLM scores looked up)."""
    n = len(query.pids)
    first = fusion.normalized_first_stage(n, query.first_stage_scores)
    cheap = hybrid.cheap_scores(weights, query.dense, first, n)
    selected = hybrid.cascade_selection(weights, cheap, range(n))
    ranked = hybrid.hybrid_ranking(weights, {i: query.llm[i] for i in selected}, query.dense, first, cheap)
    return [query.pids[i] for i, _ in ranked]


def mean_metric(
    queries: Sequence[SignalQuery], weights: HybridWeights, qrels: dict[str, dict[str, int]], threshold: int
) -> float:
    rankings = {query.qid: hybrid_pids(query, weights) for query in queries}
    return mean_ranking_metrics(rankings, qrels, threshold)[METRIC]


def weight_grid(kind: FirstStageKind, step: float = WEIGHT_STEP) -> list[HybridWeights]:
    """Simplex points (llm, dense, first_stage); a dense first stage has no separate first-stage weight."""
    count = round(1 / step)
    points = []
    for a in range(count + 1):
        for b in range(count + 1 - a):
            first = count - a - b
            if kind == "dense" and first:
                continue
            points.append(HybridWeights(llm=a / count, dense=b / count, first_stage=first / count))
    return points


@dataclass(frozen=True)
class HybridFit:
    kind: FirstStageKind
    weights: HybridWeights
    metric_all: float
    metric_cascade: float
    metric_first_stage: float
    queries: int


def fit_hybrid(
    queries: Sequence[SignalQuery], qrels: dict[str, dict[str, int]], threshold: int, kind: FirstStageKind
) -> HybridFit:
    """The best weights on ``queries`` for ``kind``, then the smallest cascade that keeps their quality."""
    handed = [query.as_first_stage(kind) for query in queries]
    best, best_value = None, -1.0
    for weights in weight_grid(kind):
        value = mean_metric(handed, weights, qrels, threshold)
        safer = best is not None and value == best_value and weights.first_stage > best.first_stage
        if value > best_value + 1e-12 or safer:
            best, best_value = weights, value
    assert best is not None
    first_only = HybridWeights(
        llm=0.0, dense=0.0 if kind == "lexical" else 1.0, first_stage=1.0 if kind == "lexical" else 0.0
    )
    chosen = best
    cascade_value = best_value
    for size in CASCADE_SIZES:
        candidate = replace(best, cascade=size)
        value = mean_metric(handed, candidate, qrels, threshold)
        if value >= best_value - CASCADE_TOLERANCE:
            chosen, cascade_value = candidate, value
            break
    return HybridFit(
        kind=kind,
        weights=chosen,
        metric_all=best_value,
        metric_cascade=cascade_value,
        metric_first_stage=mean_metric(handed, first_only, qrels, threshold),
        queries=len(handed),
    )

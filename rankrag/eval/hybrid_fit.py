"""Fitting the hybrid weights and the cascade size on the ``calib`` split, per kind of first stage.

Every candidate of every calib query carries three signals (LLM P(True), dense cosine, first-stage score).
For a ``lexical`` first stage the candidates keep the retriever's order and scores; for a ``dense`` first stage
they are re-ordered by the dense similarity, which is then also the first-stage signal (so its weight is 0).
The weights are the point of a simplex grid (step 0.1) with the best nDCG@10 on calib, ties to more first-stage
weight (the safer side). The objective is the mean over data sets of each set's mean over its queries, so every
data set weighs the same however many calib queries it has; the grid holds the first stage alone, so the fit
never ranks the calib queries below it. The cascade size is the smallest of :data:`CASCADE_SIZES` within
:data:`CASCADE_TOLERANCE` of scoring every candidate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from statistics import fmean

from rankrag.eval.metrics import per_query_ranking_metrics
from rankrag.model.hybrid import FirstStageKind, HybridWeights
from rankrag.model.ranking_plan import plan_ranking

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


@dataclass(frozen=True)
class JudgedQueries:
    """Queries of one data set with the judgements that score their rankings."""

    queries: list[SignalQuery]
    qrels: dict[str, dict[str, int]]
    threshold: int


def hybrid_pids(query: SignalQuery, weights: HybridWeights) -> list[str]:
    """The candidate ids as ``RankRAGModel.rerank`` orders them with these weights (the same
    :func:`rankrag.model.ranking_plan.plan_ranking`, with the LLM scores looked up instead of computed)."""
    plan = plan_ranking(
        query.pids, first_stage_scores=query.first_stage_scores, dense=query.dense, weights=weights, alpha=1.0
    )
    return [query.pids[p.index] for p in plan.ranking([query.llm[plan.positions[j]] for j in plan.selected])]


def mean_metric(groups: Sequence[JudgedQueries], weights: HybridWeights) -> float:
    """nDCG@10 averaged over the judged queries of each group, then over the groups (each data set weighs the
    same); groups without a judged query are left out."""
    means: list[float] = []
    for group in groups:
        rankings = {query.qid: hybrid_pids(query, weights) for query in group.queries}
        values = per_query_ranking_metrics(rankings, group.qrels, group.threshold)[METRIC].values()
        if values:
            means.append(fmean(values))
    if not means:
        raise ValueError("none of the calib queries has relevance judgements")
    return fmean(means)


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


def fit_hybrid(groups: Sequence[JudgedQueries], kind: FirstStageKind) -> HybridFit:
    """The best weights on the queries of ``groups`` (each group weighing the same) for ``kind``, then the
    smallest cascade that keeps their quality."""
    handed = [
        JudgedQueries([query.as_first_stage(kind) for query in group.queries], group.qrels, group.threshold)
        for group in groups
    ]
    best, best_value = None, -1.0
    for weights in weight_grid(kind):
        value = mean_metric(handed, weights)
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
        value = mean_metric(handed, candidate)
        if value >= best_value - CASCADE_TOLERANCE:
            chosen, cascade_value = candidate, value
            break
    return HybridFit(
        kind=kind,
        weights=chosen,
        metric_all=best_value,
        metric_cascade=cascade_value,
        metric_first_stage=mean_metric(handed, first_only),
        queries=sum(len(group.queries) for group in handed),
    )

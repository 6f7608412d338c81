"""Fitting the calibrated relevance models (:mod:`rankrag.model.relevance`) on the ``calib`` split, per kind of
first stage, and measuring how well a probability is calibrated (expected calibration error, reliability bins,
precision and recall of a threshold).

Every candidate of every calib query is one example: its signals (the LLM's P(True) as a logit, the dense cosine,
the first stage's within-query normalised score, the cosine normalised over the candidates the LLM scored) and its
label (judged relevant at the set's threshold; unjudged candidates count as not relevant). Each data set weighs the
same in the fit, however many candidates it has.
A ``dense`` first stage hands its candidates over in dense order with its cosines as the scores, so its first-stage
feature is the cosine normalised within the query: where the raw cosine says how close a passage is to the query,
that feature says how it compares with the query's other candidates.

The full model is fitted on the passages the cascade sends to the LLM, as it is used. Among them the raw cosine
carries little (they were picked for it); the cosine relative to the others sent (``dense_in_query``) carries much.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from rankrag.eval.hybrid_fit import JudgedQueries, SignalQuery
from rankrag.model.fusion import normalized_first_stage
from rankrag.model.hybrid import FirstStageKind, cascade_selection, min_max
from rankrag.model.relevance import LogisticModel, RelevanceModels, llm_logit

# L2 strength of the fit (as scikit-learn's C): weak, the features are few and the examples thousands.
REGULARIZATION_C = 10.0
ECE_BINS = 10


@dataclass(frozen=True)
class Example:
    """One candidate: its signals (``llm`` and ``dense_in_query`` None where the LLM did not score it), its label,
    its data set."""

    llm: float | None
    dense: float
    first_stage: float
    relevant: bool
    group: int
    dense_in_query: float | None = None


def examples(
    groups: Sequence[JudgedQueries], kind: FirstStageKind, cascade: tuple[LogisticModel, int | None] | None = None
) -> list[Example]:
    """Every candidate of every judged query as an example (an LLM score that is NaN counts as missing).

    ``cascade`` (the cheap model and how many passages it sends on): keep the LLM's score only for the passages that
    cascade would send to it, as :func:`rankrag.model.ranking_plan.plan_ranking` does, and normalise
    ``dense_in_query`` over them."""
    rows: list[Example] = []
    for number, group in enumerate(groups):
        for query in (q.as_first_stage(kind) for q in group.queries if q.qid in group.qrels):
            first = normalized_first_stage(len(query.pids), query.first_stage_scores)
            labels = group.qrels[query.qid]
            scored = [i for i, value in enumerate(query.llm) if value == value]
            if cascade is not None:
                cheap, depth = cascade
                probabilities = [cheap.probability(dense=d, first_stage=f) for d, f in zip(query.dense, first)]
                sent = set(cascade_selection(depth, probabilities, range(len(query.pids))))
                scored = [i for i in scored if i in sent]
            in_query = dict(zip(scored, min_max([query.dense[i] for i in scored])))
            for i, pid in enumerate(query.pids):
                rows.append(
                    Example(
                        query.llm[i] if i in in_query else None,
                        query.dense[i],
                        first[i],
                        labels.get(pid, 0) >= group.threshold,
                        number,
                        in_query.get(i),
                    )
                )
    return rows


def feature_values(example: Example, features: Sequence[str]) -> list[float]:
    values = {
        "llm": llm_logit(example.llm) if example.llm is not None else math.nan,
        "dense": example.dense,
        "first_stage": example.first_stage,
        "dense_in_query": math.nan if example.dense_in_query is None else example.dense_in_query,
    }
    return [values[name] for name in features]


def fit_logistic(examples: Sequence[Example], features: Sequence[str]) -> LogisticModel:
    """A logistic regression of the labels on ``features`` over the examples that have them, each data set weighing
    the same (the weights average 1), with an L2 penalty of ``1 / (2 * REGULARIZATION_C)`` on the coefficients.

    Every coefficient is held at 0 or above (scipy's L-BFGS-B with bounds): a higher P(True), cosine or first-stage
    score never makes a passage less likely relevant. Unconstrained, the fit on the cascade's passages (already
    chosen for their cosine) gave the cosine a negative weight, which would rank a passage on the query's topic below
    one off it."""
    import numpy as np
    from scipy.optimize import minimize

    needs_llm = bool({"llm", "dense_in_query"} & set(features))
    rows = [row for row in examples if not needs_llm or row.llm is not None]
    per_group = Counter(row.group for row in rows)
    labels = np.array([row.relevant for row in rows], dtype=float)
    if labels.all() or not labels.any():
        raise ValueError("the calib candidates must hold relevant and non-relevant passages to fit on")
    x = np.array([feature_values(row, features) for row in rows], dtype=float)
    weights = np.array([len(rows) / (len(per_group) * per_group[row.group]) for row in rows])

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = theta[0] + x @ theta[1:]
        p = 1.0 / (1.0 + np.exp(-z))
        value = float(np.sum(weights * (np.logaddexp(0.0, z) - labels * z)))
        value += float(theta[1:] @ theta[1:]) / (2.0 * REGULARIZATION_C)
        residual = weights * (p - labels)
        gradient = np.concatenate([[residual.sum()], x.T @ residual + theta[1:] / REGULARIZATION_C])
        return value, gradient

    bounds = [(None, None)] + [(0.0, None)] * len(features)
    result = minimize(loss, np.zeros(len(features) + 1), jac=True, method="L-BFGS-B", bounds=bounds)
    if not result.success:
        raise ValueError(f"the relevance fit did not converge: {result.message}")
    return LogisticModel(bias=float(result.x[0]), weights={name: float(w) for name, w in zip(features, result.x[1:])})


def fit_relevance(groups: Sequence[JudgedQueries], kind: FirstStageKind, cascade: int | None) -> RelevanceModels:
    """The three relevance models of ``kind`` on the queries of ``groups``; ``cascade`` as the hybrid fit chose.

    The full model is fitted on the passages the cascade sends to the LLM (picked by the cheap model, fitted first),
    the ones it scores in use; the no_dense model, which runs without a cascade, on every passage with an LLM
    score."""
    rows = examples(groups, kind)
    cheap = fit_logistic(rows, ("dense", "first_stage"))
    sent = examples(groups, kind, (cheap, cascade))
    return RelevanceModels(
        full=fit_logistic(sent, ("llm", "dense", "first_stage", "dense_in_query")),
        cheap=cheap,
        no_dense=fit_logistic(rows, ("llm", "first_stage")),
        cascade=cascade,
    )


@dataclass(frozen=True)
class Reliability:
    """Calibration of probabilities against labels: expected calibration error over equal-width bins, and per bin
    (count, mean probability, share relevant)."""

    ece: float
    bins: list[tuple[int, float, float]]


def reliability(probabilities: Sequence[float], labels: Sequence[bool], bins: int = ECE_BINS) -> Reliability:
    if not probabilities or len(probabilities) != len(labels):
        raise ValueError("reliability needs as many labels as probabilities, and at least one")
    buckets: list[list[int]] = [[] for _ in range(bins)]
    for index, p in enumerate(probabilities):
        buckets[min(int(p * bins), bins - 1)].append(index)
    table, error = [], 0.0
    for members in buckets:
        if not members:
            table.append((0, 0.0, 0.0))
            continue
        mean_p = sum(probabilities[i] for i in members) / len(members)
        share = sum(labels[i] for i in members) / len(members)
        error += len(members) / len(probabilities) * abs(mean_p - share)
        table.append((len(members), mean_p, share))
    return Reliability(ece=error, bins=table)


def precision_recall(probabilities: Sequence[float], labels: Sequence[bool], threshold: float) -> tuple[float, float]:
    """Precision and recall of keeping the passages with probability >= ``threshold`` (precision 1.0 when none)."""
    kept = [label for p, label in zip(probabilities, labels) if p >= threshold]
    relevant = sum(labels)
    precision = sum(kept) / len(kept) if kept else 1.0
    recall = sum(kept) / relevant if relevant else 0.0
    return precision, recall


def query_ranking(query: SignalQuery, models: RelevanceModels) -> list[tuple[int, float]]:
    """``(candidate index, probability)`` best first, as ``RankRAGModel.rerank`` ranks them (the LLM-scored ones
    first): the plan's ranking with the LLM scores looked up, not computed."""
    from rankrag.model.ranking_plan import plan_ranking

    plan = plan_ranking(
        query.pids,
        first_stage_scores=query.first_stage_scores,
        dense=query.dense,
        weights=None,
        alpha=1.0,
        relevance=models,
    )
    ranked = plan.ranking([query.llm[plan.positions[j]] for j in plan.selected])
    return [(passage.index, passage.score) for passage in ranked]


def query_probabilities(query: SignalQuery, models: RelevanceModels) -> list[float]:
    """Each candidate's probability as ``RankRAGModel.rerank`` reports it."""
    probabilities = [0.0] * len(query.pids)
    for index, probability in query_ranking(query, models):
        probabilities[index] = probability
    return probabilities

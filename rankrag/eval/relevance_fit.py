"""Fitting the calibrated relevance models (:mod:`rankrag.model.relevance`) on the ``calib`` split, per kind of
first stage, and measuring how well a probability is calibrated (expected calibration error, reliability bins,
precision and recall of a threshold).

Every candidate of every calib query is one example: its signals (the LLM's P(True) as a logit, the dense cosine,
the first stage's within-query normalised score) and its label (judged relevant at the set's threshold; unjudged
candidates count as not relevant). Each data set weighs the same in the fit, however many candidates it has.
A ``dense`` first stage hands its candidates over in dense order, and its first-stage feature is that order, so
only the ``no_dense`` model uses it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from rankrag.eval.hybrid_fit import JudgedQueries, SignalQuery
from rankrag.model.fusion import normalized_first_stage
from rankrag.model.hybrid import FirstStageKind
from rankrag.model.relevance import LogisticModel, RelevanceModels, llm_logit

# L2 strength of the fit (scikit-learn's C): weak, the features are few and the examples thousands.
REGULARIZATION_C = 10.0
ECE_BINS = 10


@dataclass(frozen=True)
class Example:
    """One candidate: its signals (``llm`` None where the LLM did not score it), its label, its data set."""

    llm: float | None
    dense: float
    first_stage: float
    relevant: bool
    group: int


def examples(groups: Sequence[JudgedQueries], kind: FirstStageKind) -> list[Example]:
    """Every candidate of every judged query as an example (an LLM score that is NaN counts as missing)."""
    rows: list[Example] = []
    for number, group in enumerate(groups):
        for query in (q.as_first_stage(kind) for q in group.queries if q.qid in group.qrels):
            first = normalized_first_stage(len(query.pids), query.first_stage_scores)
            labels = group.qrels[query.qid]
            for i, pid in enumerate(query.pids):
                llm = query.llm[i] if query.llm[i] == query.llm[i] else None
                rows.append(Example(llm, query.dense[i], first[i], labels.get(pid, 0) >= group.threshold, number))
    return rows


def feature_values(example: Example, features: Sequence[str]) -> list[float]:
    values = {
        "llm": llm_logit(example.llm) if example.llm is not None else math.nan,
        "dense": example.dense,
        "first_stage": example.first_stage,
    }
    return [values[name] for name in features]


def fit_logistic(examples: Sequence[Example], features: Sequence[str]) -> LogisticModel:
    """A logistic regression of the labels on ``features`` (scikit-learn, L2 at :data:`REGULARIZATION_C`) over the
    examples that have them; each data set weighs the same in all, and the weights average 1 (so the penalty keeps
    its usual strength against the data)."""
    from sklearn.linear_model import LogisticRegression

    rows = [row for row in examples if "llm" not in features or row.llm is not None]
    per_group = Counter(row.group for row in rows)
    labels = [row.relevant for row in rows]
    if all(labels) or not any(labels):
        raise ValueError("the calib candidates must hold relevant and non-relevant passages to fit on")
    model = LogisticRegression(C=REGULARIZATION_C, max_iter=1000)
    weights = [len(rows) / (len(per_group) * per_group[row.group]) for row in rows]
    model.fit([feature_values(row, features) for row in rows], labels, sample_weight=weights)
    return LogisticModel(
        bias=float(model.intercept_[0]), weights={name: float(w) for name, w in zip(features, model.coef_[0])}
    )


def fit_relevance(groups: Sequence[JudgedQueries], kind: FirstStageKind, cascade: int | None) -> RelevanceModels:
    """The three relevance models of ``kind`` on the queries of ``groups``; ``cascade`` as the hybrid fit chose."""
    rows = examples(groups, kind)
    with_first = ("first_stage",) if kind == "lexical" else ()
    return RelevanceModels(
        full=fit_logistic(rows, ("llm", "dense", *with_first)),
        cheap=fit_logistic(rows, ("dense", *with_first)),
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


def query_probabilities(query: SignalQuery, models: RelevanceModels) -> list[float]:
    """Each candidate's probability as ``RankRAGModel.rerank`` reports it (LLM scores looked up, not computed)."""
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
    probabilities = [0.0] * len(query.pids)
    for passage in ranked:
        probabilities[passage.index] = passage.score
    return probabilities

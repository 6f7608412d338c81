"""Evaluation metrics: ranking metrics through ``ir_measures`` (trec_eval semantics) and answer metrics.

Ranking: nDCG@10 with graded, linear gain (trec_eval's ``ndcg_cut``), Recall@k and MRR@10 where a
document counts as relevant at or above the data set's threshold (TREC DL: grade >= 2; SciFact: >= 1).
A ranking is handed over as an ordered list of document ids; it becomes scores that decrease with the
position, so ties in the underlying scores never get re-broken by document id (trec_eval's rule).

Answers: SQuAD's exact match and token F1 after its normalisation (lower case, no punctuation, no
articles, single spaces), the maximum over the gold answers; and, for yes/no/maybe questions
(PubMedQA), the label read from the generated text.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence
from statistics import fmean
from types import ModuleType

from rankrag.optional import require

RECALL_CUTOFFS = (5, 10, 20)
RANKING_METRICS = ("ndcg@10", "recall@5", "recall@10", "recall@20", "mrr@10")
YES_NO_MAYBE = ("yes", "no", "maybe")

Qrels = Mapping[str, Mapping[str, int]]
Rankings = Mapping[str, Sequence[str]]


def _ir_measures() -> ModuleType:
    return require("ir_measures", "eval", "computing ranking metrics")


def _measures(relevance_threshold: int) -> dict[str, object]:
    ir_measures = _ir_measures()
    measures: dict[str, object] = {"ndcg@10": ir_measures.nDCG @ 10}
    for k in RECALL_CUTOFFS:
        measures[f"recall@{k}"] = ir_measures.R(rel=relevance_threshold) @ k
    measures["mrr@10"] = ir_measures.RR(rel=relevance_threshold) @ 10
    return measures


def rankings_as_run(rankings: Rankings) -> dict[str, dict[str, float]]:
    """Ordered id lists -> an ir_measures run whose scores reproduce exactly that order."""
    run: dict[str, dict[str, float]] = {}
    for qid, ranking in rankings.items():
        if len(set(ranking)) != len(ranking):
            raise ValueError(f"the ranking of query {qid!r} lists a document more than once")
        run[qid] = {pid: float(len(ranking) - position) for position, pid in enumerate(ranking)}
    return run


def per_query_ranking_metrics(
    rankings: Rankings, qrels: Qrels, relevance_threshold: int
) -> dict[str, dict[str, float]]:
    """``{metric: {qid: value}}`` for every ranked query that has judgements.

    Queries without judgements are left out (as trec_eval does); a judged query with no relevant
    document scores 0. Recall counts relevant documents the first stage missed, from the full qrels.
    """
    ir_measures = _ir_measures()
    judged = {qid: {pid: int(grade) for pid, grade in qrels[qid].items()} for qid in rankings if qid in qrels}
    run = {qid: ranking for qid, ranking in rankings_as_run(rankings).items() if qid in judged}
    measures = _measures(relevance_threshold)
    names = {measure: name for name, measure in measures.items()}
    values: dict[str, dict[str, float]] = {name: {} for name in measures}
    if not run:
        return values
    for metric in ir_measures.iter_calc(list(measures.values()), judged, run):
        values[names[metric.measure]][metric.query_id] = float(metric.value)
    return values


def mean_ranking_metrics(rankings: Rankings, qrels: Qrels, relevance_threshold: int) -> dict[str, float]:
    """Mean over judged queries of nDCG@10, Recall@5/10/20 and MRR@10."""
    per_query = per_query_ranking_metrics(rankings, qrels, relevance_threshold)
    return {name: fmean(values.values()) if values else 0.0 for name, values in per_query.items()}


# ---------------------------------------------------------------------------------------- answers
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD v1.1 normalisation: lower case, drop punctuation and articles, collapse white space."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals a normalised gold answer."""
    normalized = normalize_answer(prediction)
    return float(any(normalized == normalize_answer(answer) for answer in answers))


def _token_f1(prediction: str, answer: str) -> float:
    predicted, gold = normalize_answer(prediction).split(), normalize_answer(answer).split()
    common = sum((Counter(predicted) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def f1_score(prediction: str, answers: Sequence[str]) -> float:
    """SQuAD token F1, the best over the gold answers."""
    return max((_token_f1(prediction, answer) for answer in answers), default=0.0)


# An answer that says the passages lack the answer: the answerer's trained wording (ChatQA's), the not-found message,
# and the usual ways models put it.
_NOT_FOUND = re.compile(
    r"(can ?not|can't|could not|couldn't|unable to) find|(do|does|did) not (contain|mention|say|provide|include|"
    r"specify|state)|(don't|doesn't|do not) know|not (mentioned|provided|stated|given|specified|found) in|"
    r"no (information|mention) (about|of|on)|there is no information",
    re.IGNORECASE,
)


def says_not_found(prediction: str) -> bool:
    """Whether an answer says the passages do not hold the answer (instead of giving one)."""
    return _NOT_FOUND.search(prediction) is not None


def yes_no_maybe(prediction: str) -> str | None:
    """The first of yes / no / maybe that the normalised text says as a word, or None."""
    for word in normalize_answer(prediction).split():
        if word in YES_NO_MAYBE:
            return word
    return None


def macro_f1(predicted: Sequence[str | None], gold: Sequence[str], labels: Sequence[str] = YES_NO_MAYBE) -> float:
    """Macro-averaged F1 over ``labels`` (PubMedQA's second official metric); None never matches."""
    if len(predicted) != len(gold):
        raise ValueError(f"got {len(predicted)} predictions for {len(gold)} gold labels")
    scores = []
    for label in labels:
        true_positive = sum(p == label and g == label for p, g in zip(predicted, gold))
        predicted_count = sum(p == label for p in predicted)
        gold_count = sum(g == label for g in gold)
        if predicted_count == 0 and gold_count == 0:
            continue
        scores.append(2 * true_positive / (predicted_count + gold_count))
    return fmean(scores) if scores else 0.0


def recall_of_gold(selected: Sequence[bool], total_gold: int) -> float | None:
    """Fraction of the gold passages among the selected ones; None when the item has no gold passage."""
    if total_gold == 0:
        return None
    return sum(selected) / total_gold

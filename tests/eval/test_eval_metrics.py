"""Metrics against hand-computed cases and against the published BM25 figures on the real data (no model)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from rankrag.data.datasets import load_rerank_dataset, read_jsonl
from rankrag.eval.metrics import (
    exact_match,
    f1_score,
    macro_f1,
    mean_ranking_metrics,
    normalize_answer,
    per_query_ranking_metrics,
    rankings_as_run,
    recall_of_gold,
    yes_no_maybe,
)

QRELS = {"q1": {"a": 2, "b": 1, "c": 3, "z": 2}, "q2": {"x": 1}, "q3": {"y": 0}}


def test_ndcg_uses_linear_graded_gain_as_trec_eval() -> None:
    dcg = 2 / math.log2(2) + 1 / math.log2(3) + 3 / math.log2(4)
    ideal = 3 / math.log2(2) + 2 / math.log2(3) + 2 / math.log2(4) + 1 / math.log2(5)
    values = per_query_ranking_metrics({"q1": ["a", "b", "c", "d"]}, QRELS, relevance_threshold=2)
    assert values["ndcg@10"]["q1"] == pytest.approx(dcg / ideal)


def test_recall_and_mrr_count_only_grades_at_the_threshold_over_the_full_qrels() -> None:
    strict = per_query_ranking_metrics({"q1": ["b", "d", "c", "a"]}, QRELS, relevance_threshold=2)
    # grade >= 2: a, c and z (z was never retrieved but still counts in the denominator)
    assert strict["recall@5"]["q1"] == pytest.approx(2 / 3)
    assert strict["mrr@10"]["q1"] == pytest.approx(1 / 3)
    lenient = per_query_ranking_metrics({"q1": ["b", "d", "c", "a"]}, QRELS, relevance_threshold=1)
    assert lenient["recall@5"]["q1"] == pytest.approx(3 / 4)
    assert lenient["mrr@10"]["q1"] == pytest.approx(1.0)


def test_recall_cutoffs_cut_the_ranking() -> None:
    ranking = [f"n{i}" for i in range(7)] + ["a"] + [f"m{i}" for i in range(5)] + ["c"]
    values = per_query_ranking_metrics({"q1": ranking}, QRELS, relevance_threshold=2)
    assert values["recall@5"]["q1"] == 0.0
    assert values["recall@10"]["q1"] == pytest.approx(1 / 3)
    assert values["recall@20"]["q1"] == pytest.approx(2 / 3)
    assert values["mrr@10"]["q1"] == pytest.approx(1 / 8)


def test_the_given_order_decides_never_the_document_ids() -> None:
    # trec_eval breaks score ties by document id; a ranking must not be reordered that way.
    values = per_query_ranking_metrics({"q2": ["zzz", "x"]}, QRELS, relevance_threshold=1)
    assert values["mrr@10"]["q2"] == pytest.approx(0.5)
    assert rankings_as_run({"q": ["b", "a"]}) == {"q": {"b": 2.0, "a": 1.0}}


def test_unjudged_queries_are_left_out_and_judged_queries_without_relevant_documents_score_zero() -> None:
    values = mean_ranking_metrics({"q3": ["y"], "unjudged": ["a"]}, QRELS, relevance_threshold=1)
    assert values == {"ndcg@10": 0.0, "recall@5": 0.0, "recall@10": 0.0, "recall@20": 0.0, "mrr@10": 0.0}
    means = mean_ranking_metrics({"q1": ["a"], "q3": ["y"]}, QRELS, relevance_threshold=2)
    assert means["mrr@10"] == pytest.approx(0.5)


def test_a_ranking_listing_a_document_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="more than once"):
        mean_ranking_metrics({"q1": ["a", "a"]}, QRELS, relevance_threshold=2)


def test_squad_normalisation_exact_match_and_f1() -> None:
    assert normalize_answer("  The Denver  Broncos!! ") == "denver broncos"
    assert normalize_answer("an apple, a day") == "apple day"
    assert exact_match("the Broncos.", ["Denver Broncos", "Broncos"]) == 1.0
    assert exact_match("Broncos won", ["Broncos"]) == 0.0
    # precision 1/3, recall 1 -> 0.5; the best gold answer counts
    assert f1_score("Denver Broncos won", ["Broncos", "Carolina Panthers"]) == pytest.approx(0.5)
    assert f1_score("nothing", ["Broncos"]) == 0.0
    assert f1_score("", ["Broncos"]) == 0.0


def test_yes_no_maybe_reads_the_first_label_word() -> None:
    assert yes_no_maybe("Yes, it does.") == "yes"
    assert yes_no_maybe("Maybe; the data say no.") == "maybe"
    assert yes_no_maybe("Nothing is known (NO).") == "no"
    assert yes_no_maybe("Nobody knows") is None
    # yes: 1 hit, 2 predicted, 1 gold -> 2/3; no: 1 hit, 1 predicted, 2 gold -> 2/3; maybe: never predicted -> 0
    assert macro_f1(["yes", "yes", "no", None], ["yes", "no", "no", "maybe"]) == pytest.approx(4 / 9)
    assert macro_f1(["no", "no"], ["no", "no"]) == 1.0


def test_recall_of_gold() -> None:
    assert recall_of_gold([True, False, True], total_gold=4) == 0.5
    assert recall_of_gold([False], total_gold=0) is None


# ------------------------------------------------------------------------------- the real data
def _bm25_rankings(dataset) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    return {q.qid: [c.pid for c in q.candidates] for q in dataset.queries}


def _textbook_ndcg10(ranking: list[str], grades: dict[str, int]) -> float:
    def dcg(gains: list[int]) -> float:
        return sum(g / math.log2(i + 2) for i, g in enumerate(gains[:10]))

    ideal = dcg(sorted(grades.values(), reverse=True))
    return dcg([grades.get(pid, 0) for pid in ranking]) / ideal if ideal else 0.0


PUBLISHED_BM25_NDCG10 = {"dl19": (0.5058, 43), "dl20": (0.4796, 54)}


@pytest.mark.parametrize("track", ["dl19", "dl20"])
def test_bm25_ndcg_on_trec_dl_matches_trec_eval_and_the_published_figures(data_dir: Path, track: str) -> None:
    dataset = load_rerank_dataset(data_dir, "trec_dl_passage")
    tracks = {str(r["qid"]): r["track"] for r in read_jsonl(data_dir / "trec_dl_passage" / "bm25_top100.jsonl")}
    rankings = {qid: r for qid, r in _bm25_rankings(dataset).items() if tracks[qid] == track}
    values = per_query_ranking_metrics(rankings, dataset.qrels, dataset.relevance_threshold)["ndcg@10"]
    for qid, ranking in rankings.items():
        assert values[qid] == pytest.approx(_textbook_ndcg10(ranking, dataset.qrels[qid]), abs=1e-9)
    mean = sum(values.values()) / len(values)
    published, n_published = PUBLISHED_BM25_NDCG10[track]
    if len(rankings) == n_published:  # a copy holding every judged query (shared + holdout)
        assert mean == pytest.approx(published, abs=5e-4)
    else:  # the shared part alone: a subset of the queries behind the published mean
        assert len(rankings) < n_published
        assert mean == pytest.approx(published, abs=0.05)


def test_bm25_figures_on_scifact_match_the_data_readme(data_dir: Path) -> None:
    dataset = load_rerank_dataset(data_dir, "scifact")
    metrics = mean_ranking_metrics(_bm25_rankings(dataset), dataset.qrels, dataset.relevance_threshold)
    if len(dataset.queries) == 210:  # the shared queries, on which the README states 0.644
        assert metrics["ndcg@10"] == pytest.approx(0.644, abs=5e-4)
    assert 0.0 < metrics["recall@5"] <= metrics["recall@10"] <= metrics["recall@20"] <= 1.0

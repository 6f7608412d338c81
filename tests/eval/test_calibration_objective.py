"""What `rankrag calibrate` maximises: every data set weighs the same, however many calib queries it has, and each
set is reranked at its own depth (`--candidates SET=N`). Pure logic, no model."""

from __future__ import annotations

import math

import pytest

from rankrag.cli.calibrate import parse_candidates
from rankrag.data.datasets import RerankDataset
from rankrag.eval.calibration import ScoredQuery, calibration_curve, candidates_per_dataset
from rankrag.eval.hybrid_fit import JudgedQueries, SignalQuery, mean_metric
from rankrag.model.hybrid import HybridWeights

SECOND = 1 / math.log2(3)  # nDCG@10 of one relevant passage ranked second


def _signal_query(qid: str, relevant_first: bool) -> SignalQuery:
    pids = [f"{qid}-rel", f"{qid}-other"] if relevant_first else [f"{qid}-other", f"{qid}-rel"]
    return SignalQuery(qid, pids, llm=[0.5, 0.5], dense=[0.5, 0.5], first_stage_scores=[2.0, 1.0])


def _qrels(qids: list[str]) -> dict[str, dict[str, int]]:
    return {qid: {f"{qid}-rel": 1} for qid in qids}


def test_every_data_set_weighs_the_same_in_the_hybrid_fit() -> None:
    small = JudgedQueries([_signal_query("a1", True)], _qrels(["a1"]), 1)
    large_qids = ["b1", "b2", "b3"]
    large = JudgedQueries([_signal_query(q, False) for q in large_qids], _qrels(large_qids), 1)
    first_stage = HybridWeights(llm=0.0, dense=0.0, first_stage=1.0)
    assert mean_metric([small, large], first_stage) == pytest.approx((1.0 + SECOND) / 2)
    assert mean_metric([small], first_stage) == pytest.approx(1.0)
    unjudged = JudgedQueries([_signal_query("c1", True)], {}, 1)
    assert mean_metric([small, unjudged], first_stage) == pytest.approx(1.0)  # a set without judgements is left out
    with pytest.raises(ValueError, match="relevance judgements"):
        mean_metric([unjudged], first_stage)


def test_every_data_set_weighs_the_same_in_the_alpha_curve() -> None:
    def scored(dataset: str, qid: str, relevant_first: bool) -> ScoredQuery:
        pids = [f"{qid}-rel", f"{qid}-other"] if relevant_first else [f"{qid}-other", f"{qid}-rel"]
        return ScoredQuery(dataset, qid, pids, llm_scores=[0.5, 0.5], first_stage=[1.0, 0.0])

    queries = [scored("small", "a1", True)] + [scored("large", q, False) for q in ("b1", "b2", "b3")]
    datasets = [
        RerankDataset("small", [], _qrels(["a1"]), 1),
        RerankDataset("large", [], _qrels(["b1", "b2", "b3"]), 1),
    ]
    overall, per_dataset = calibration_curve(queries, datasets, [0.0])
    assert per_dataset == {"small": {0.0: pytest.approx(1.0)}, "large": {0.0: pytest.approx(SECOND)}}
    assert overall[0.0] == pytest.approx((1.0 + SECOND) / 2)


def test_candidates_per_data_set() -> None:
    names = ["trec_dl_passage", "scifact"]
    assert candidates_per_dataset(30, names) == {"trec_dl_passage": 30, "scifact": 30}
    assert candidates_per_dataset({"scifact": 30, "trec_dl_passage": 100}, names) == {
        "trec_dl_passage": 100,
        "scifact": 30,
    }
    with pytest.raises(ValueError, match=r"missing \['trec_dl_passage'\]"):
        candidates_per_dataset({"scifact": 30}, names)
    with pytest.raises(ValueError, match="positive integer.*scifact"):
        candidates_per_dataset({"scifact": 0, "trec_dl_passage": 100}, names)


def test_the_candidates_option_takes_one_count_or_one_per_set() -> None:
    names = ["trec_dl_passage", "scifact"]
    assert parse_candidates(["100"], names) == {"trec_dl_passage": 100, "scifact": 100}
    assert parse_candidates(["scifact=30"], names) == {"trec_dl_passage": 100, "scifact": 30}
    assert parse_candidates(["50,scifact=30"], names) == {"trec_dl_passage": 50, "scifact": 30}
    assert parse_candidates(["trec_dl_passage=100", "scifact=30"], names) == {"trec_dl_passage": 100, "scifact": 30}
    with pytest.raises(ValueError, match="not among the --dataset sets"):
        parse_candidates(["trec=100"], names)
    with pytest.raises(ValueError, match="whole number"):
        parse_candidates(["scifact=thirty"], names)
    with pytest.raises(ValueError, match="positive integer"):
        parse_candidates(["0"], names)

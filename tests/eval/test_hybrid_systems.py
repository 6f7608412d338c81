"""The hybrid in evaluation and calibration: `eval rerank`'s dense and hybrid systems, and the calibration fit, rank
exactly as `RankRAGModel.rerank` and the embedding model do (zero-shot embedded model, real data)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rankrag import RankRAGModel
from rankrag.data.datasets import RerankDataset, RerankQuery, load_rerank_dataset
from rankrag.eval.calibration import store_calibration
from rankrag.eval.hybrid_fit import SignalQuery, hybrid_pids
from rankrag.eval.rerank import run_rerank_systems
from rankrag.model.hybrid import HybridWeights


def _cut(data: RerankDataset, n: int) -> RerankDataset:
    queries = [RerankQuery(q.qid, q.query, q.candidates[:n]) for q in data.queries]
    return RerankDataset(data.name, queries, data.qrels, data.relevance_threshold)


def test_dense_and_hybrid_systems_rank_as_the_embedder_and_rerank_do(base_model: Any, data_dir: Path) -> None:
    data = _cut(load_rerank_dataset(data_dir, "scifact", split="dev", limit=1), 6)
    run = run_rerank_systems(base_model, data, ["dense", "hybrid"], candidates=6, progress=False)
    query = data.queries[0]
    pids = [c.pid for c in query.candidates]
    texts = [c.text for c in query.candidates]
    cosines = base_model.embedder.similarities(query.query, texts)
    assert run.rankings["dense"][query.qid] == [pids[i] for i in sorted(range(6), key=lambda i: -cosines[i])]
    ranked = base_model.rerank(query.query, texts, first_stage_scores=[c.first_stage_score for c in query.candidates])
    assert run.rankings["hybrid"][query.qid] == [pids[p.index] for p in ranked]
    assert run.seconds["dense"] > 0 and run.seconds["hybrid"] > 0


def test_the_calibration_fit_ranks_exactly_as_rerank_does(base_model: Any, data_dir: Path) -> None:
    query = load_rerank_dataset(data_dir, "trec_dl_passage", split="calib", limit=1).queries[0]
    texts = [c.text for c in query.candidates[:6]]
    pids = [c.pid for c in query.candidates[:6]]
    bm25 = [c.first_stage_score for c in query.candidates[:6]]
    signals = SignalQuery(
        query.qid,
        pids,
        base_model.score(query.query, texts),
        base_model.embedder.similarities(query.query, texts),
        bm25,
    )
    for weights in (HybridWeights(0.4, 0.6, 0.0), HybridWeights(0.2, 0.5, 0.3, cascade=3)):
        ranked = base_model.rerank(query.query, texts, first_stage_scores=bm25, weights=weights)
        assert hybrid_pids(signals, weights) == [pids[p.index] for p in ranked]


def test_calibrate_fits_and_stores_hybrid_weights_per_kind(
    base_model: Any, data_dir: Path, tmp_path: Path, run_cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "calibration.json"
    result = run_cli(
        "calibrate", "--data-dir", data_dir, "--dataset", "trec_dl_passage", "--limit", 1, "--candidates", 4,
        "--adapter", "none", "--no-progress", "--output", target,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads(target.read_text(encoding="utf-8"))
    assert set(record["hybrid"]) == {"lexical", "dense"}
    for kind, weights in record["hybrid"].items():
        HybridWeights.from_dict(weights)  # valid weights
        scores = record["hybrid ndcg@10"][kind]
        assert scores["all scored"] >= scores["first_stage"] - 1e-9  # the grid holds the first stage alone
    assert record["hybrid"]["dense"]["first_stage"] == 0.0
    assert "hybrid, lexical first stage" in result.output

    monkeypatch.setenv("RANKRAG_CACHE_DIR", str(tmp_path))
    fitted = {
        "lexical": {"llm": 0.3, "dense": 0.4, "first_stage": 0.3, "cascade": 20},
        "dense": record["hybrid"]["dense"],
    }
    try:
        store_calibration(base_model, {"alpha": 0.5, "hybrid": fitted})
        again = RankRAGModel.load(adapter=None, device="cpu", dtype="float32")
        assert again is base_model
        assert again.hybrid_weights("lexical") == HybridWeights(0.3, 0.4, 0.3, cascade=20)
    finally:
        monkeypatch.undo()
        base_model.reload_calibration()

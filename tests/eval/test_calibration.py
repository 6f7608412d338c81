"""`rankrag calibrate`: the alpha grid, the choice rule, agreement with `rerank`, storage and the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rankrag import RankRAGModel
from rankrag.data.datasets import load_rerank_dataset
from rankrag.eval.calibration import alpha_grid, choose_alpha, fused_order, store_calibration
from rankrag.eval.metrics import mean_ranking_metrics
from rankrag.eval.rerank import llm_only_order
from rankrag.model.fusion import normalized_first_stage


def test_alpha_grid_and_choice_rule() -> None:
    grid = alpha_grid(0.05)
    assert len(grid) == 21 and grid[0] == 0.0 and grid[-1] == 1.0 and grid[7] == 0.35
    assert choose_alpha({0.0: 0.5, 0.5: 0.6, 1.0: 0.6}) == 0.5  # ties go to the smaller alpha
    assert choose_alpha({0.0: 0.5, 0.5: 0.4, 1.0: 0.3}) == 0.0
    with pytest.raises(ValueError, match="divide 1"):
        alpha_grid(0.3)


def test_calibration_ranks_exactly_as_rerank_does(base_model: Any, data_dir: Path) -> None:
    query = load_rerank_dataset(data_dir, "trec_dl_passage", split="calib", limit=1).queries[0]
    texts = [c.text for c in query.candidates[:4]]
    bm25 = [c.first_stage_score for c in query.candidates[:4]]
    llm = base_model.score(query.query, texts)
    first = normalized_first_stage(len(texts), bm25)
    ranked = base_model.rerank(query.query, texts, first_stage_scores=bm25, alpha=0.4)
    assert [p.index for p in ranked] == fused_order(llm, first, 0.4)
    assert llm_only_order(ranked) == fused_order(llm, first, 1.0)
    assert fused_order(llm, first, 0.0) == sorted(range(4), key=lambda i: (-bm25[i], i))


def test_calibrate_cli_on_the_calib_split(
    base_model: Any, data_dir: Path, tmp_path: Path, run_cli: Callable[..., Any]
) -> None:
    target = tmp_path / "calibration.json"
    result = run_cli(
        "calibrate",
        "--data-dir",
        data_dir,
        "--dataset",
        "trec_dl_passage",
        "--limit",
        1,
        "--top-n",
        3,
        "--adapter",
        "none",
        "--no-progress",
        "--output",
        target,
    )
    assert result.exit_code == 0, result.output
    record = json.loads(target.read_text(encoding="utf-8"))
    assert {"alpha", "ndcg@10 per alpha", "datasets", "split", "model", "adapter", "date"} <= set(record)
    assert record["split"] == "calib" and record["datasets"] == ["trec_dl_passage"]
    assert record["model"] == base_model.name and record["adapter"] is None
    curve = record["ndcg@10 per alpha"]
    assert len(curve) == 21 and record["alpha"] in alpha_grid(0.05)
    assert curve[f"{record['alpha']:.2f}"] == max(curve.values())
    # alpha 0 is the first stage of the first calib query (never a dev query)
    calib = load_rerank_dataset(data_dir, "trec_dl_passage", split="calib", limit=1)
    bm25 = mean_ranking_metrics({q.qid: [c.pid for c in q.candidates[:3]] for q in calib.queries}, calib.qrels, 2)
    assert curve["0.00"] == pytest.approx(bm25["ndcg@10"])
    assert f"wrote {target}" in result.output.replace("\n", "")


def test_a_stored_calibration_becomes_the_default_alpha_of_load(
    base_model: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RANKRAG_CACHE_DIR", str(tmp_path))
    try:
        written = store_calibration(base_model, {"alpha": 0.35, "split": "calib"})
        assert written.is_relative_to(tmp_path)
        again = RankRAGModel.load(adapter=None, device="cpu", dtype="float32")
        assert again is base_model and again.default_alpha == 0.35
    finally:
        monkeypatch.undo()
        base_model.reload_calibration()

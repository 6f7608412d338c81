"""`rankrag eval rerank|qa` end to end on two real queries/questions with the embedded model, and errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rankrag.data.datasets import QAContext, QAItem, load_qa_dataset, load_rerank_dataset
from rankrag.errors import MissingDependencyError
from rankrag.eval.metrics import mean_ranking_metrics
from rankrag.eval.qa import score_answers
from rankrag.eval.rerank import DEFAULT_RERANK_SYSTEMS, LLM_RERANK_MODULE, load_llm_rerank_baseline

RANKING_KEYS = {"ndcg@10", "recall@5", "recall@10", "recall@20", "mrr@10", "seconds_per_query"}
QA_KEYS = {"em", "f1", "recall@k"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _assert_sidecars(json_path: Path) -> None:
    assert json_path.with_suffix(".png").read_bytes()[:8] == PNG_MAGIC
    assert "| system |" in json_path.with_suffix(".md").read_text(encoding="utf-8")


def test_eval_rerank_end_to_end(base_model: Any, data_dir: Path, tmp_path: Path, run_cli: Callable[..., Any]) -> None:
    pytest.importorskip("llama_index.core")  # llm_rerank needs the [llamaindex] extra
    output = tmp_path / "rerank.json"
    result = run_cli(
        "eval",
        "rerank",
        "--data-dir",
        data_dir,
        "--dataset",
        "trec_dl_passage",
        "--limit",
        2,
        "--top-n",
        3,
        "--adapter",
        "none",
        "--alpha",
        0.5,
        "--no-progress",
        "--output",
        output,
        "--systems",
        "first_stage,rankrag,fused,llm_rerank",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(output.read_text(encoding="utf-8"))
    assert {"dataset", "n_queries", "candidates", "model", "systems"} <= set(report)
    assert (report["dataset"], report["n_queries"], report["candidates"]) == ("trec_dl_passage", 2, 3)
    assert report["model"] == base_model.name
    assert set(report["systems"]) == {"first_stage", "rankrag", "fused", "llm_rerank"}
    for figures in report["systems"].values():
        assert set(figures) == RANKING_KEYS
        assert all(0.0 <= figures[k] <= 1.0 for k in RANKING_KEYS - {"seconds_per_query"})
    assert report["systems"]["rankrag"]["seconds_per_query"] > 0
    assert report["alpha"] == 0.5 and report["alpha_source"] == "given" and report["split"] == "dev"
    assert report["llm_rerank_parsing"]["batches"] == 2  # 3 passages fit one LLMRerank batch per query

    # first_stage is the given BM25 order of the first two dev queries, cut to the top 3
    data = load_rerank_dataset(data_dir, "trec_dl_passage", split="dev", limit=2)
    expected = mean_ranking_metrics({q.qid: [c.pid for c in q.candidates[:3]] for q in data.queries}, data.qrels, 2)
    assert {k: report["systems"]["first_stage"][k] for k in expected} == pytest.approx(expected)
    _assert_sidecars(output)


def _block_llamaindex(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make LlamaIndex (and the baseline built on it) unimportable, as without the [llamaindex] extra."""
    for name in ("llama_index", "llama_index.core", "rankrag_llamaindex", LLM_RERANK_MODULE):
        monkeypatch.setitem(sys.modules, name, None)  # None in sys.modules: import raises ImportError


def test_default_rerank_systems_need_no_llamaindex(
    base_model: Any, data_dir: Path, tmp_path: Path, run_cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _block_llamaindex(monkeypatch)
    output = tmp_path / "rerank.json"
    result = run_cli(
        "eval",
        "rerank",
        "--data-dir",
        data_dir,
        "--dataset",
        "scifact",
        "--limit",
        1,
        "--top-n",
        2,
        "--adapter",
        "none",
        "--no-progress",
        "--output",
        output,
    )
    assert result.exit_code == 0, result.output
    report = json.loads(output.read_text(encoding="utf-8"))
    assert list(report["systems"]) == list(DEFAULT_RERANK_SYSTEMS)
    assert list(DEFAULT_RERANK_SYSTEMS) == ["first_stage", "dense", "rankrag", "fused", "hybrid"]
    assert "llm_rerank_parsing" not in report
    assert report["embedding_model"] == "all-MiniLM-L6-v2"
    assert report["hybrid_weights_source"] == "uncalibrated default"  # --adapter none: the base has no calibration


def test_llm_rerank_without_llamaindex_names_the_extra(
    data_dir: Path, tmp_path: Path, run_cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _block_llamaindex(monkeypatch)
    result = run_cli(
        "eval",
        "rerank",
        "--data-dir",
        data_dir,
        "--dataset",
        "scifact",
        "--systems",
        "first_stage,llm_rerank",
        "--output",
        tmp_path / "out.json",
    )
    assert result.exit_code == 1
    assert 'pip install "rankrag[llamaindex]"' in result.output and "llm_rerank" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out.json").exists()
    with pytest.raises(MissingDependencyError, match=re.escape('pip install "rankrag[llamaindex]"')):
        load_llm_rerank_baseline()


def test_eval_qa_end_to_end(base_model: Any, data_dir: Path, tmp_path: Path, run_cli: Callable[..., Any]) -> None:
    output = tmp_path / "qa.json"
    result = run_cli(
        "eval",
        "qa",
        "--data-dir",
        data_dir,
        "--dataset",
        "2wikimultihopqa_dev",
        "--limit",
        2,
        "--top-k",
        2,
        "--adapter",
        "none",
        "--max-new-tokens",
        4,
        "--no-progress",
        "--output",
        output,
    )
    assert result.exit_code == 0, result.output
    report = json.loads(output.read_text(encoding="utf-8"))
    assert {"dataset", "n_questions", "top_k", "model", "systems"} <= set(report)
    assert (report["dataset"], report["n_questions"], report["top_k"]) == ("2wikimultihopqa_dev", 2, 2)
    assert set(report["systems"]) == {"retrieval_order", "rankrag", "oracle"}
    for figures in report["systems"].values():
        assert set(figures) == QA_KEYS
        assert all(0.0 <= value <= 1.0 for value in figures.values())
    items = load_qa_dataset(data_dir, "2wikimultihopqa_dev", split="dev", limit=2)
    gold = [sum(c.is_gold for c in item.contexts) for item in items]
    listed = [sum(c.is_gold for c in item.contexts[:2]) / g for item, g in zip(items, gold)]
    assert report["systems"]["retrieval_order"]["recall@k"] == pytest.approx(sum(listed) / 2)
    assert report["systems"]["oracle"]["recall@k"] == pytest.approx(sum(min(2, g) / g for g in gold) / 2)
    _assert_sidecars(output)


def test_eval_qa_runs_only_the_chosen_systems(
    base_model: Any, data_dir: Path, tmp_path: Path, run_cli: Callable[..., Any]
) -> None:
    output = tmp_path / "qa.json"
    arguments = ["--data-dir", data_dir, "--dataset", "squad_v1.1_dev", "--limit", 1, "--adapter", "none"]
    result = run_cli(
        "eval", "qa", *arguments, "--systems", "oracle", "--max-new-tokens", 2, "--no-progress", "--output", output
    )
    assert result.exit_code == 0, result.output
    report = json.loads(output.read_text(encoding="utf-8"))
    assert list(report["systems"]) == ["oracle"] and list(report["seconds_per_question"]) == ["oracle"]
    assert report["systems"]["oracle"]["recall@k"] == 1.0 and report["n_questions_with_gold"] == 1


def test_pubmedqa_is_scored_as_accuracy_and_macro_f1_over_yes_no_maybe() -> None:
    def item(label: str) -> QAItem:
        return QAItem(id=label, question="q?", answers=[label], contexts=[QAContext("", "t", True, False)], group="g")

    items = [item("yes"), item("no"), item("maybe")]
    accuracy, f1 = score_answers("pubmedqa_pqal", ["Yes, it does.", "No.", "It is unclear"], items)
    assert accuracy == pytest.approx(2 / 3)
    assert f1 == pytest.approx((1 + 1 + 0) / 3)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["rerank", "--dataset", "msmarco", "--systems", "first_stage"], "unknown dataset 'msmarco'"),
        (["rerank", "--dataset", "scifact", "--systems", "first_stage,bm42"], "unknown system(s) 'bm42'"),
        (["rerank", "--dataset", "scifact", "--split", "test"], "unknown split 'test'"),
        (["rerank", "--dataset", "scifact", "--limit", "0"], "--limit must be a positive integer"),
        (["qa", "--dataset", "scifact"], "unknown dataset 'scifact'"),
        (["qa", "--dataset", "squad_v1.1_dev", "--systems", "oracle,gold"], "unknown system(s) 'gold'"),
    ],
)
def test_bad_input_is_one_line_and_a_non_zero_exit(
    data_dir: Path, tmp_path: Path, run_cli: Callable[..., Any], arguments: list[str], message: str
) -> None:
    result = run_cli("eval", *arguments, "--data-dir", data_dir, "--output", tmp_path / "out.json")
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out.json").exists()


def test_a_missing_data_directory_is_reported_without_a_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "RANKRAG_DATA_DIR"}
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "rankrag.cli.app",
            "eval",
            "rerank",
            "--dataset",
            "scifact",
            "--systems",
            "first_stage",
            "--data-dir",
            str(tmp_path / "nowhere"),
            "--output",
            str(tmp_path / "out.json"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert process.returncode != 0
    assert process.stderr.strip().splitlines() == [
        f"rankrag: error: data directory {str(tmp_path / 'nowhere')!r} does not exist"
    ]

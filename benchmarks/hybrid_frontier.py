"""Hybrid reranking on dev: weights fitted on calib per kind of first stage, and the cascade's quality frontier.

Reads the LLM scores that ``benchmarks/dev_eval.py`` saved (one scoring pass per candidate, for calib and dev),
adds the embedded MiniLM's cosine for every candidate (timed), fits the hybrid weights on calib
(:func:`rankrag.eval.hybrid_fit.fit_hybrid`) and reports nDCG@10 on dev for: the first stage, dense alone,
LLM alone, LLM fused with the first stage at the shipped alpha, the fitted hybrid, and the hybrid with the LLM
scoring only the cheap signals' top m (the cascade), for each m. A dense first stage is the same candidates
re-ordered by the cosine.

    python benchmarks/hybrid_frontier.py --data-dir DIR --dataset trec_dl_passage \
        --calib runs/hybrid/trec_calib.json --dev runs/hybrid/trec_dev.json --output runs/hybrid/trec_frontier.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from statistics import fmean
from typing import TYPE_CHECKING, Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import machine  # noqa: E402

if TYPE_CHECKING:
    from rankrag.data.splits import Split

CASCADE_SIZES = (10, 20, 30, 50, 100)


def signal_queries(path: Path, data_dir: str, dataset: str, split: Split) -> tuple[list[Any], Any, float]:
    from rankrag.data.datasets import load_rerank_dataset
    from rankrag.eval.hybrid_fit import SignalQuery
    from rankrag.model.dense import resolve_embedder

    saved = next(iter(json.loads(path.read_text())["results"].values()))["scores"]
    data = load_rerank_dataset(data_dir, dataset, split=split)
    embedder = resolve_embedder("default")
    assert embedder is not None
    queries, seconds = [], 0.0
    for query in data.queries:
        if query.qid not in saved:
            continue
        row = saved[query.qid]
        texts = {c.pid: c.text for c in query.candidates}
        started = time.perf_counter()
        dense = embedder.similarities(query.query, [texts[pid] for pid in row["pids"]])
        seconds += time.perf_counter() - started
        queries.append(SignalQuery(query.qid, row["pids"], row["llm"], dense, row["bm25"]))
    return queries, data, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--calib", type=Path, default=None, help="dev_eval.py output on the calib split (to fit)")
    parser.add_argument("--dev", required=True, type=Path, help="dev_eval.py output on the dev split")
    parser.add_argument("--alpha", type=float, default=0.7, help="the fused system's alpha (the shipped one)")
    parser.add_argument(
        "--calibration",
        type=Path,
        default=None,
        help="a rankrag_calibration.json whose hybrid weights are measured too (the frontier then uses them)",
    )
    parser.add_argument("--output", required=True, type=Path)
    args = parser.parse_args()

    from rankrag.eval.hybrid_fit import JudgedQueries, fit_hybrid, hybrid_pids
    from rankrag.eval.metrics import mean_ranking_metrics
    from rankrag.model.hybrid import HybridWeights
    from rankrag.model.rankrag_model import UNCALIBRATED_HYBRID

    stored = json.loads(args.calibration.read_text())["hybrid"] if args.calibration else {}

    if args.calib is None and args.calibration is None:
        parser.error("give --calib (weights fitted here) or --calibration (stored weights), or both")
    calib, calib_data, _ = (
        signal_queries(args.calib, args.data_dir, args.dataset, "calib") if args.calib else ([], None, 0.0)
    )
    dev, dev_data, dense_seconds = signal_queries(args.dev, args.data_dir, args.dataset, "dev")

    def ndcg(queries: list[Any], weights: HybridWeights) -> float:
        rankings = {q.qid: hybrid_pids(q, weights) for q in queries}
        return round(mean_ranking_metrics(rankings, dev_data.qrels, dev_data.relevance_threshold)["ndcg@10"], 4)

    report: dict[str, Any] = {
        "benchmark": "hybrid_frontier",
        "command": " ".join([sys.executable, *sys.argv]),
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "dataset": args.dataset,
        "dev_queries": len(dev),
        "calib_queries": len(calib),
        "candidates_per_query": round(fmean(len(q.pids) for q in dev), 1),
        "dense_seconds_dev": round(dense_seconds, 1),
        "kinds": {},
    }
    for kind in ("lexical", "dense"):
        fit = (
            fit_hybrid([JudgedQueries(calib, calib_data.qrels, calib_data.relevance_threshold)], kind)
            if calib_data is not None
            else None
        )
        handed = [q.as_first_stage(kind) for q in dev]
        chosen = HybridWeights.from_dict(stored[kind]) if kind in stored or fit is None else fit.weights
        full = replace(chosen, cascade=None)
        systems = {
            "first_stage": ndcg(handed, HybridWeights(0.0, 0.0, 1.0)),
            "dense": ndcg(handed, HybridWeights(0.0, 1.0, 0.0)),
            "llm": ndcg(handed, HybridWeights(1.0, 0.0, 0.0)),
            f"fused@{args.alpha}": ndcg(handed, HybridWeights(args.alpha, 0.0, 1.0 - args.alpha)),
            "llm+dense 0.5/0.5": ndcg(handed, HybridWeights(0.5, 0.5, 0.0)),
            "hybrid (uncalibrated default)": ndcg(handed, UNCALIBRATED_HYBRID[kind]),
        }
        if fit is not None:
            systems["hybrid (fitted here, all scored)"] = ndcg(handed, replace(fit.weights, cascade=None))
        if kind in stored:
            systems["hybrid (stored calibration, all scored)"] = ndcg(handed, full)
            systems["hybrid (stored calibration, its cascade)"] = ndcg(handed, chosen)
        frontier = {str(m): ndcg(handed, replace(full, cascade=m)) for m in CASCADE_SIZES}
        report["kinds"][kind] = {
            "fitted": None if fit is None else fit.weights.as_dict(),
            "stored": stored.get(kind),
            "calib": None
            if fit is None
            else {
                "all": round(fit.metric_all, 4),
                "cascade": round(fit.metric_cascade, 4),
                "first_stage": round(fit.metric_first_stage, 4),
            },
            "dev": systems,
            "cascade_dev": frontier,
        }
        print(args.dataset, kind, "weights", chosen.as_dict(), flush=True)
        for name, value in systems.items():
            print(f"  {name:32s} {value:.4f}")
        print("  cascade m -> nDCG@10:", frontier, flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

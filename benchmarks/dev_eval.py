"""Reranking quality on a split, scored once per model: first stage, LLM only, and fusion at every alpha.

Each model scores every first-stage candidate of every query once (``RankRAGModel.score``); all systems
are then computed from those scores, exactly as ``RankRAGModel.rerank`` orders them:

* ``first_stage``: the BM25 order;
* ``llm``: P(True) alone (``alpha = 1``);
* ``fused_scores@a``: ``a * P(True) + (1 - a) * min-max(BM25 score)``, i.e. ``rerank(first_stage_scores=...)``;
* ``fused_order@a``: ``a * P(True) + (1 - a) * (1 - rank / n)``, i.e. ``rerank()`` without scores: what
  ``RankRAGReranker`` does with documents that carry no retrieval score.

The raw scores are saved, so other alphas can be studied without scoring again.

    python benchmarks/dev_eval.py --data-dir DIR --adapter rankrag/adapters/smollm2-135m-rankrag \
        --models tuned,zero_shot --datasets trec_dl_passage,scifact --split dev --output runs/eval/dev.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import machine  # noqa: E402

ALPHAS = [round(i * 0.05, 2) for i in range(21)]


def rankings_for(pids: list[str], llm: list[float], first: list[float], alpha: float) -> list[str]:
    from rankrag.model.fusion import fuse

    final = fuse(llm, first, alpha) if alpha < 1.0 else llm
    order = sorted(range(len(pids)), key=lambda i: (-final[i], i))
    return [pids[i] for i in order]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--adapter", default="default", help="adapter of the tuned model")
    parser.add_argument("--models", default="tuned,zero_shot")
    parser.add_argument("--datasets", default="trec_dl_passage,scifact")
    parser.add_argument("--split", default="dev")
    parser.add_argument(
        "--candidates",
        "--top-n",
        dest="candidates",
        type=int,
        default=100,
        help="first-stage candidates reranked per query",
    )
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--dtype", default="float32", help="float32 or bfloat16 (the answer rows stay float32)")
    parser.add_argument("--output", required=True, type=Path)
    args = parser.parse_args()

    from transformers.utils import logging as transformers_logging

    from rankrag import RankRAGModel
    from rankrag.data.datasets import load_rerank_dataset
    from rankrag.eval.metrics import mean_ranking_metrics
    from rankrag.model.fusion import normalized_first_stage

    transformers_logging.set_verbosity_error()
    adapters = {"tuned": args.adapter, "zero_shot": None}
    report: dict[str, object] = {
        "benchmark": "dev_eval",
        "command": " ".join([sys.executable, *sys.argv]),
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "split": args.split,
        "candidates": args.candidates,
        "dtype": args.dtype,
        "results": {},
    }
    results: dict[str, object] = report["results"]  # type: ignore[assignment]  # filled below
    args.output.parent.mkdir(parents=True, exist_ok=True)
    for label in args.models.split(","):
        model = RankRAGModel.load(adapter=adapters[label], device="cpu", dtype=args.dtype)
        calibration = model.calibration
        for name in args.datasets.split(","):
            data = load_rerank_dataset(args.data_dir, name, split=args.split, limit=args.limit)
            started = time.monotonic()
            scored: dict[str, dict[str, list[Any]]] = {}
            for query in data.queries:
                candidates = query.candidates[: args.candidates]
                llm = model.score(query.query, [c.text for c in candidates])
                scored[query.qid] = {
                    "pids": [c.pid for c in candidates],
                    "llm": llm,
                    "bm25": [c.first_stage_score for c in candidates],
                }
            seconds = time.monotonic() - started
            systems: dict[str, dict[str, float]] = {}
            systems["first_stage"] = mean_ranking_metrics(
                {qid: s["pids"] for qid, s in scored.items()}, data.qrels, data.relevance_threshold
            )
            for alpha in ALPHAS:
                by_scores, by_order = {}, {}
                for qid, s in scored.items():
                    n = len(s["pids"])
                    by_scores[qid] = rankings_for(s["pids"], s["llm"], normalized_first_stage(n, s["bm25"]), alpha)
                    by_order[qid] = rankings_for(s["pids"], s["llm"], normalized_first_stage(n, None), alpha)
                if alpha == 1.0:
                    systems["llm"] = mean_ranking_metrics(by_scores, data.qrels, data.relevance_threshold)
                else:
                    systems[f"fused_scores@{alpha:.2f}"] = mean_ranking_metrics(
                        by_scores, data.qrels, data.relevance_threshold
                    )
                    systems[f"fused_order@{alpha:.2f}"] = mean_ranking_metrics(
                        by_order, data.qrels, data.relevance_threshold
                    )
            results[f"{label}/{name}"] = {
                "model": model.name,
                "adapter": adapters[label],
                "n_queries": len(scored),
                "calibrated_alpha": (calibration or {}).get("alpha"),
                "scoring_seconds": round(seconds, 1),
                "passages_per_second": round(sum(len(s["pids"]) for s in scored.values()) / seconds, 2),
                "systems": systems,
                "scores": scored,
            }
            shown = (
                "first_stage",
                "llm",
                f"fused_scores@{model.default_alpha:.2f}",
                f"fused_order@{model.default_alpha:.2f}",
            )
            summary = {k: round(v["ndcg@10"], 4) for k, v in systems.items() if k in shown}
            print(label, name, f"{seconds:.0f}s", summary, flush=True)
            args.output.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

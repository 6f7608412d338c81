"""The cost of the hybrid ranking, measured in ONE run over the same queries and candidates:

  llm      ``RankRAGModel.score`` of all N candidates (what ``rerank(alpha=...)`` costs: every passage scored);
  dense    the embedded MiniLM's cosine of all N candidates (the dense signal when the retriever gives none);
  hybrid   ``RankRAGModel.rerank`` as ``RankRAGReranker()`` calls it: the dense signal, then the LLM on the
           cascade's best m by the cheap signals (the model's calibrated weights);
  hybrid_all  the same weights with every candidate sent to the LLM (no cascade).

Each query's N BM25 candidates come from TREC DL (dev split). Methods run in rounds, rotated each round; each
ratio (dense / llm, hybrid / llm, hybrid_all / llm) is the median over the rounds of the per-round ratio, so
load from other work on the machine affects both sides of a ratio alike.

    python benchmarks/hybrid_cost.py [--queries 4] [--candidates 100] [--rounds 3] [--cascade M] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data-dir", default=str(_common.default_data_dir()))
    parser.add_argument("--queries", type=int, default=4)
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cascade", type=int, default=None, help="measure this cascade instead of the shipped one")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    from rankrag import RankRAGModel
    from rankrag.data.datasets import load_rerank_dataset

    data = load_rerank_dataset(args.data_dir, "trec_dl_passage", split="dev", limit=args.queries)
    model = RankRAGModel.load()
    embedder = model.embedder
    assert embedder is not None
    weights = model.hybrid_weights("lexical")
    if args.cascade is not None:
        weights = replace(weights, cascade=args.cascade)
    all_scored = replace(weights, cascade=None)
    work = [
        (q.query, [c.text for c in q.candidates[: args.candidates]], [c.first_stage_score for c in q.candidates])
        for q in data.queries
    ]
    work = [(query, texts, scores[: len(texts)]) for query, texts, scores in work]

    def run_all(call: Callable[[str, list[str], list[float]], object]) -> float:
        started = time.perf_counter()
        for query, texts, scores in work:
            call(query, texts, scores)
        return time.perf_counter() - started

    methods: dict[str, Callable[[str, list[str], list[float]], object]] = {
        "llm": lambda q, t, s: model.score(q, t),
        "dense": lambda q, t, s: embedder.similarities(q, t),
        "hybrid": lambda q, t, s: model.rerank(q, t, first_stage_scores=s, weights=weights),
        "hybrid_all": lambda q, t, s: model.rerank(q, t, first_stage_scores=s, weights=all_scored),
    }
    run_all(methods["dense"])  # warm up: load MiniLM, first-call allocations
    model.score(work[0][0], work[0][1][:8])
    names = list(methods)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(args.rounds):
        for name in names[round_index % len(names) :] + names[: round_index % len(names)]:
            seconds[name].append(run_all(methods[name]))
        print(f"round {round_index + 1}: " + ", ".join(f"{n} {seconds[n][-1]:.1f} s" for n in names), flush=True)
    ratios = {
        f"{name}/llm": round(statistics.median(a / b for a, b in zip(seconds[name], seconds["llm"])), 3)
        for name in ("dense", "hybrid", "hybrid_all")
    }
    report: dict[str, Any] = {
        **_common.stamp(sys.argv),
        "machine": _common.machine(),
        "queries": len(work),
        "candidates": args.candidates,
        "weights": weights.as_dict(),
        "median_seconds": {name: round(statistics.median(values), 2) for name, values in seconds.items()},
        "ratios": ratios,
    }
    print(json.dumps(report["ratios"]), flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=1)


if __name__ == "__main__":
    main()

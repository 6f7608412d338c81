"""Which fusion rule for the hybrid: min-max (shipped), z-scores, ranks, or reciprocal-rank fusion, chosen on calib.

Reads the LLM scores that ``benchmarks/dev_eval.py`` saved for the calib and the dev split of each data set, adds
the embedded MiniLM's cosine of every candidate, and for each rule fits convex weights (LLM, dense, first stage)
on a 0.1 simplex grid by calib nDCG@10 (the mean over data sets of each set's mean, as ``rankrag calibrate``
does; every candidate scored, no cascade). It prints each rule's calib figure and, for the rule with the best
calib figure only unless ``--all-dev``, its dev figures per data set next to the first stage's.

    python benchmarks/hybrid_rules.py --data-dir DIR \
        --set trec_dl_passage:runs/hybrid/trec_calib.json:runs/hybrid/trec_dev.json \
        --set scifact:runs/hybrid/scifact_calib.json:runs/hybrid/scifact_dev.json --json FILE
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402
from hybrid_frontier import signal_queries  # noqa: E402

from rankrag.eval.hybrid_fit import SignalQuery, weight_grid  # noqa: E402
from rankrag.model.hybrid import min_max  # noqa: E402

RRF_K = 60
Weights = tuple[float, float, float]  # llm, dense, first stage


def z_scores(values: Sequence[float]) -> list[float]:
    mean = statistics.fmean(values)
    spread = statistics.pstdev(values)
    return [0.0] * len(values) if spread == 0 else [(v - mean) / spread for v in values]


def ranks(values: Sequence[float]) -> list[int]:
    order = sorted(range(len(values)), key=lambda i: (-values[i], i))
    position = [0] * len(values)
    for rank, index in enumerate(order):
        position[index] = rank
    return position


def rank_scores(values: Sequence[float]) -> list[float]:
    return [1.0 - r / len(values) for r in ranks(values)]


def rrf_scores(values: Sequence[float]) -> list[float]:
    return [1.0 / (RRF_K + r + 1) for r in ranks(values)]


RULES: dict[str, Callable[[Sequence[float]], list[float]]] = {
    "min-max": min_max,
    "z-score": z_scores,
    "rank": rank_scores,
    "rrf": rrf_scores,
}


def ranking(query: SignalQuery, rule: str, weights: Weights) -> list[str]:
    signals = (query.llm, query.dense, query.first_stage_scores or [])
    normalised = [RULES[rule](values) for values in signals]
    final = [sum(w * n[i] for w, n in zip(weights, normalised)) for i in range(len(query.pids))]
    return [query.pids[i] for i in sorted(range(len(query.pids)), key=lambda i: (-final[i], i))]


def mean_ndcg(sets: Sequence[tuple[list[SignalQuery], Any]], rule: str, weights: Weights) -> list[float]:
    from rankrag.eval.metrics import mean_ranking_metrics

    return [
        mean_ranking_metrics(
            {query.qid: ranking(query, rule, weights) for query in queries},
            data.qrels,
            data.relevance_threshold,
        )["ndcg@10"]
        for queries, data in sets
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data-dir", default=str(_common.default_data_dir()))
    parser.add_argument("--set", action="append", required=True, help="NAME:CALIB_SCORES:DEV_SCORES")
    parser.add_argument("--all-dev", action="store_true", help="dev figures of every rule, not only the chosen one")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    calib, dev, names = [], [], []
    for spec in args.set:
        name, calib_path, dev_path = spec.split(":")
        names.append(name)
        calib.append(signal_queries(Path(calib_path), args.data_dir, name, "calib")[:2])
        dev.append(signal_queries(Path(dev_path), args.data_dir, name, "dev")[:2])

    report: dict[str, Any] = {**_common.stamp(sys.argv), "machine": _common.machine(), "sets": names, "rules": {}}
    grid = [(w.llm, w.dense, w.first_stage) for w in weight_grid("lexical")]
    for rule in RULES:
        scored = [(statistics.fmean(mean_ndcg(calib, rule, w)), w) for w in grid]
        best_value = max(value for value, _ in scored)
        weights = max(w for value, w in scored if value >= best_value - 1e-12)  # ties: the most LLM weight
        report["rules"][rule] = {"weights": weights, "calib": round(best_value, 4)}
        print(f"{rule:8s} calib {best_value:.4f} weights (llm, dense, first stage) {weights}", flush=True)
    chosen = max(report["rules"], key=lambda rule: report["rules"][rule]["calib"])
    report["chosen"] = chosen
    first_stage = dict(zip(names, mean_ndcg(dev, "min-max", (0.0, 0.0, 1.0))))
    report["dev first stage"] = first_stage
    for rule in RULES if args.all_dev else [chosen]:
        values = dict(zip(names, mean_ndcg(dev, rule, report["rules"][rule]["weights"])))
        report["rules"][rule]["dev"] = values
        print(
            f"dev, {rule}: " + ", ".join(f"{n} {v:.4f} (first stage {first_stage[n]:.4f})" for n, v in values.items())
        )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

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
from typing import TYPE_CHECKING, Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402

if TYPE_CHECKING:
    from rankrag.data.splits import Split

RRF_K = 60
Signals = tuple[list[str], list[float], list[float], list[float]]  # pids, llm, dense, first stage


def min_max(values: Sequence[float]) -> list[float]:
    low, high = min(values), max(values)
    return [1.0] * len(values) if high == low else [(v - low) / (high - low) for v in values]


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


def ranking(signals: Signals, rule: str, weights: tuple[float, float, float]) -> list[str]:
    pids, *values = signals
    normalised = [RULES[rule](v) for v in values]
    final = [sum(w * n[i] for w, n in zip(weights, normalised)) for i in range(len(pids))]
    return [pids[i] for i in sorted(range(len(pids)), key=lambda i: (-final[i], i))]


def grid(step: float = 0.1) -> list[tuple[float, float, float]]:
    count = round(1 / step)
    return [(a / count, b / count, (count - a - b) / count) for a in range(count + 1) for b in range(count + 1 - a)]


def load(path: Path, data_dir: str, name: str, split: Split, embedder: Any) -> tuple[dict[str, Signals], Any]:
    from rankrag.data.datasets import load_rerank_dataset

    saved = next(iter(json.loads(path.read_text())["results"].values()))["scores"]
    data = load_rerank_dataset(data_dir, name, split=split)
    queries = {}
    for query in data.queries:
        if query.qid in saved:
            row = saved[query.qid]
            texts = {c.pid: c.text for c in query.candidates}
            dense = embedder.similarities(query.query, [texts[pid] for pid in row["pids"]])
            queries[query.qid] = (row["pids"], row["llm"], dense, row["bm25"])
    return queries, data


def mean_ndcg(
    sets: Sequence[tuple[dict[str, Signals], Any]], rule: str, weights: tuple[float, float, float]
) -> list[float]:
    from rankrag.eval.metrics import mean_ranking_metrics

    return [
        mean_ranking_metrics(
            {qid: ranking(signals, rule, weights) for qid, signals in queries.items()},
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

    from rankrag.model.dense import resolve_embedder

    embedder = resolve_embedder("default")
    calib, dev, names = [], [], []
    for spec in args.set:
        name, calib_path, dev_path = spec.split(":")
        names.append(name)
        calib.append(load(Path(calib_path), args.data_dir, name, "calib", embedder))
        dev.append(load(Path(dev_path), args.data_dir, name, "dev", embedder))

    report: dict[str, Any] = {**_common.stamp(sys.argv), "machine": _common.machine(), "sets": names, "rules": {}}
    for rule in RULES:
        scored = [(statistics.fmean(mean_ndcg(calib, rule, w)), w) for w in grid()]
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

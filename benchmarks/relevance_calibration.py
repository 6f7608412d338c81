"""Calibrated relevance on dev: the relevance models fitted on calib (as ``rankrag calibrate`` fits them), measured on
dev per data set and kind of first stage: nDCG@10 of ranking by the probability (with the cascade) beside the
min-max hybrid with the same model's shipped weights, expected calibration error (10 bins), a reliability plot, and
precision / recall of ``score_threshold`` 0.3, 0.5 and 0.7.

Reads the signals ``benchmarks/relevance_scores.py`` saved for calib and dev (TREC DL: BM25 top 100; SciFact: top
30; the LLM's P(True) where the cascade sends a passage to it). Only the lexical kind is measured on dev (there
the LLM scored the lexical cascade's passages only); the dense kind is fitted on calib. Writes the fitted
``relevance`` record, ready for a ``rankrag_calibration.json``.

    python benchmarks/relevance_calibration.py --data-dir DIR --scores runs/relevance \
        --output docs/results/relevance/shipped.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from statistics import fmean
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import machine  # noqa: E402

THRESHOLDS = (0.3, 0.5, 0.7)
SETS = {"trec_dl_passage": "trec", "scifact": "scifact"}


def judged(scores: Path, data_dir: str, dataset: str, split: str) -> Any:
    import math

    from rankrag.data.datasets import load_rerank_dataset
    from rankrag.eval.hybrid_fit import JudgedQueries, SignalQuery

    saved = json.loads((scores / f"{dataset}_{split}.json").read_text())["queries"]
    data = load_rerank_dataset(data_dir, dataset, split=split)  # type: ignore[arg-type]
    queries = [
        SignalQuery(qid, row["pids"], [math.nan if v is None else v for v in row["llm"]], row["dense"], row["bm25"])
        for qid, row in saved.items()
    ]
    return JudgedQueries(queries, data.qrels, data.relevance_threshold)


def evaluate(group: Any, kind: str, models: Any, weights: Any) -> dict[str, Any]:
    from rankrag.eval.hybrid_fit import JudgedQueries, mean_metric
    from rankrag.eval.metrics import per_query_ranking_metrics
    from rankrag.eval.relevance_fit import precision_recall, query_ranking, reliability

    handed = JudgedQueries([q.as_first_stage(kind) for q in group.queries], group.qrels, group.threshold)
    probabilities, labels, rankings = [], [], {}
    for query in handed.queries:
        if query.qid not in handed.qrels:
            continue
        ranked = query_ranking(query, models)
        probabilities += [p for _, p in ranked]
        labels += [handed.qrels[query.qid].get(query.pids[i], 0) >= handed.threshold for i, _ in ranked]
        rankings[query.qid] = [query.pids[i] for i, _ in ranked]
    by_probability = fmean(per_query_ranking_metrics(rankings, handed.qrels, handed.threshold)["ndcg@10"].values())
    table = reliability(probabilities, labels)
    return {
        "queries": len(rankings),
        "candidates": len(labels),
        "relevant share": round(sum(labels) / len(labels), 4),
        "ndcg@10 relevance (cascade)": round(by_probability, 4),
        "ndcg@10 min-max hybrid (cascade)": round(mean_metric([handed], weights), 4),
        "ece": round(table.ece, 4),
        "reliability bins (count, mean p, share relevant)": [(n, round(p, 4), round(s, 4)) for n, p, s in table.bins],
        "threshold": {
            f"{t}": dict(
                zip(("precision", "recall"), (round(v, 4) for v in precision_recall(probabilities, labels, t)))
            )
            for t in THRESHOLDS
        },
    }


def threshold_on_calib(groups: list[Any], models: Any) -> dict[str, Any]:
    """The threshold to ship: the one of 0.1 .. 0.9 whose keep/drop decision on the calib candidates the LLM scored
    has the best F1 for the relevant ones (each data set weighing the same), with that F1 per threshold."""
    from rankrag.eval.relevance_fit import precision_recall, query_probabilities

    per_set: dict[float, list[float]] = {}
    for group in groups:
        probabilities, labels = [], []
        for query in group.queries:
            if query.qid not in group.qrels:
                continue
            values = query_probabilities(query, models)
            scored = [i for i, v in enumerate(query.llm) if v == v]
            probabilities += [values[i] for i in scored]
            labels += [group.qrels[query.qid].get(query.pids[i], 0) >= group.threshold for i in scored]
        for t in [round(0.1 * k, 1) for k in range(1, 10)]:
            precision, recall = precision_recall(probabilities, labels, t)
            per_set.setdefault(t, []).append(
                2 * precision * recall / (precision + recall) if precision + recall else 0.0
            )
    f1 = {t: fmean(values) for t, values in per_set.items()}
    best = max(f1, key=lambda t: (f1[t], -abs(t - 0.5)))
    return {
        "chosen": best,
        "mean F1 of keeping the relevant, per threshold": {f"{t}": round(v, 4) for t, v in f1.items()},
    }


def plot(results: dict[str, Any], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4.5), squeeze=False)
    for axis, (label, row) in zip(axes[0], results.items()):
        bins = [b for b in row["reliability bins (count, mean p, share relevant)"] if b[0]]
        axis.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
        axis.plot([b[1] for b in bins], [b[2] for b in bins], marker="o")
        for count, p, share in bins:
            axis.annotate(str(count), (p, share), textcoords="offset points", xytext=(4, -10), fontsize=7)
        axis.set_title(f"{label}: ECE {row['ece']:.3f}")
        axis.set_xlabel("predicted P(relevant)")
        axis.set_ylabel("share relevant")
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1)
    figure.tight_layout()
    figure.savefig(target, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--scores", required=True, type=Path, help="the output directory of relevance_scores.py")
    parser.add_argument("--adapter", default="default", help="the model whose shipped hybrid weights are compared")
    parser.add_argument("--output", required=True, type=Path)
    args = parser.parse_args()

    from rankrag import RankRAGModel
    from rankrag.eval.relevance_fit import fit_relevance
    from rankrag.model.hybrid import FIRST_STAGE_KINDS
    from rankrag.model.relevance import RelevanceModels

    model = RankRAGModel.load(adapter=None if args.adapter == "none" else args.adapter)
    calib = [judged(args.scores, args.data_dir, name, "calib") for name in SETS]
    dev = {name: judged(args.scores, args.data_dir, name, "dev") for name in SETS}
    record: dict[str, Any] = {}
    results: dict[str, Any] = {}
    for kind in FIRST_STAGE_KINDS:
        weights = model.hybrid_weights(kind)
        models = fit_relevance(calib, kind, weights.cascade)
        record[kind] = models.as_dict()
        for name, group in dev.items() if kind == "lexical" else ():
            label = f"{SETS[name]} {kind}"
            results[label] = evaluate(group, kind, models, weights)
            row = results[label]
            print(
                f"{label:>16}: nDCG@10 relevance {row['ndcg@10 relevance (cascade)']:.4f} vs min-max "
                f"{row['ndcg@10 min-max hybrid (cascade)']:.4f}; ECE {row['ece']:.4f}; thresholds {row['threshold']}",
                flush=True,
            )
    choice = threshold_on_calib(calib, RelevanceModels.from_dict(record["lexical"]))
    print("threshold chosen on calib:", choice, flush=True)
    report = {"machine": machine(), "args": {k: str(v) for k, v in vars(args).items()}, "relevance": record}
    report["threshold on calib (lexical)"] = choice
    report["dev"] = results
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2), encoding="utf-8")
    plot({k: v for k, v in results.items() if k.endswith("lexical")}, args.output.with_suffix(".png"))


if __name__ == "__main__":
    main()

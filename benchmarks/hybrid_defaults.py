"""The uncalibrated hybrid weights, measured on dev: which fixed weights stay at or above the first stage for an
LLM whose ranking is unmeasured, and what they give a tuned one.

Reads LLM scores that ``benchmarks/dev_eval.py`` saved (``--runs FILE``, repeated; every ``model/dataset`` result
in a file is read, and a later file's result replaces an earlier one's of the same model, set and depth), adds
the embedded MiniLM's cosine of every candidate, and for every point of the 0.1 simplex grid of (llm, dense, first_stage) reports nDCG@10 per (model, data set), for a
lexical first stage (BM25 order and scores) and a dense one (the candidates re-ordered by the cosine). The chosen
default per kind is, among the points that give the LLM some weight and are not below the first stage on any
result (the zero-shot model stands in for any model nobody measured, the tuned one for a model that ranks), the
one with the best mean over all results; ties go to more first-stage weight. Its cascade is checked on the
results with more than ``--cascade`` candidates.

    python benchmarks/hybrid_defaults.py --data-dir DIR \\
        --runs docs/results/stage1/dev_trec_dl_top30.json --runs docs/results/stage1/dev_scifact_first35_top30.json \\
        --runs docs/results/shipped/dev_trec_dl_top100.json --output docs/results/hybrid/defaults.json
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
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import machine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--split", default="dev")
    parser.add_argument("--runs", action="append", required=True, type=Path, help="a dev_eval.py output")
    parser.add_argument("--cascade", type=int, default=30)
    parser.add_argument("--output", required=True, type=Path)
    args = parser.parse_args()

    from rankrag.data.datasets import load_rerank_dataset
    from rankrag.eval.hybrid_fit import JudgedQueries, SignalQuery, mean_metric, weight_grid
    from rankrag.model.dense import resolve_embedder
    from rankrag.model.hybrid import FIRST_STAGE_KINDS, HybridWeights

    embedder = resolve_embedder("default")
    assert embedder is not None
    datasets: dict[str, Any] = {}
    dense_cache: dict[tuple[str, str, str], float] = {}
    results: dict[str, JudgedQueries] = {}
    for path in args.runs:
        for label, result in json.loads(path.read_text())["results"].items():
            model, dataset = label.split("/")
            if dataset not in datasets:
                datasets[dataset] = load_rerank_dataset(args.data_dir, dataset, split=args.split)
            data = datasets[dataset]
            texts = {q.qid: {c.pid: c.text for c in q.candidates} for q in data.queries}
            queries = []
            for query in data.queries:
                row = result["scores"].get(query.qid)
                if row is None:
                    continue
                missing = [pid for pid in row["pids"] if (dataset, query.qid, pid) not in dense_cache]
                if missing:
                    values = embedder.similarities(query.query, [texts[query.qid][pid] for pid in missing])
                    dense_cache.update({(dataset, query.qid, pid): v for pid, v in zip(missing, values)})
                dense = [dense_cache[(dataset, query.qid, pid)] for pid in row["pids"]]
                queries.append(SignalQuery(query.qid, row["pids"], row["llm"], dense, row["bm25"]))
            key = f"{model}/{dataset}/top{len(queries[0].pids)}"
            results[key] = JudgedQueries(queries, data.qrels, data.relevance_threshold)

    report: dict[str, Any] = {
        "benchmark": "hybrid_defaults",
        "command": " ".join([sys.executable, *sys.argv]),
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "results": {key: len(group.queries) for key, group in results.items()},
        "kinds": {},
    }
    for kind in FIRST_STAGE_KINDS:
        handed = {
            key: JudgedQueries([q.as_first_stage(kind) for q in g.queries], g.qrels, g.threshold)
            for key, g in results.items()
        }
        first_only = HybridWeights(0.0, 0.0 if kind == "lexical" else 1.0, 1.0 if kind == "lexical" else 0.0)
        floor = {key: mean_metric([g], first_only) for key, g in handed.items()}
        table = []
        for weights in weight_grid(kind):
            values = {key: mean_metric([g], weights) for key, g in handed.items()}
            safe = all(values[key] >= floor[key] - 1e-9 for key in values)
            table.append((weights, values, safe, fmean(values.values())))
        candidates = [row for row in table if row[2] and row[0].llm > 0]
        best = max(candidates, key=lambda row: (round(row[3], 9), row[0].first_stage))
        chosen = replace(best[0], cascade=args.cascade)
        deep = {key: g for key, g in handed.items() if len(g.queries[0].pids) > args.cascade}
        report["kinds"][kind] = {
            "first_stage": {key: round(v, 4) for key, v in floor.items()},
            "dense_alone": {key: round(mean_metric([g], HybridWeights(0.0, 1.0, 0.0)), 4) for key, g in handed.items()},
            "chosen": chosen.as_dict(),
            "chosen_all_scored": {key: round(v, 4) for key, v in best[1].items()},
            "chosen_cascade": {key: round(mean_metric([g], chosen), 4) for key, g in deep.items()},
            "grid": [
                {
                    "weights": w.as_dict(),
                    "ndcg@10": {k: round(v, 4) for k, v in values.items()},
                    "not_below_first": safe,
                }
                for w, values, safe, _ in table
            ],
        }
        print(kind, "chosen", chosen.as_dict(), flush=True)
        for key in handed:
            print(f"  {key:40s} first {floor[key]:.4f}  chosen {best[1][key]:.4f}")
        print("  cascade:", report["kinds"][kind]["chosen_cascade"], flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

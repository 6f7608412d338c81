"""The signals ``benchmarks/relevance_calibration.py`` fits and measures, scored with the LLM only where the product
scores them: the cascade's passages.

For every candidate (TREC DL: BM25 top 100; SciFact: top 30) the embedded MiniLM's cosine is computed. The cheap
relevance model (dense cosine and first stage, no LLM: :func:`rankrag.eval.relevance_fit.fit_logistic`) is fitted on
the calib labels first, so the cascade's choice on calib and dev is known before any LLM scoring; then the LLM
scores, per query, the lexical cascade's passages (the best ``--lexical-cascade`` by the cheap probability) and those
the shipped min-max hybrid's cascade picks (so the two rules are compared on their own cascades), so the full models
are fitted on the passages they are applied to. Unscored candidates are saved with ``llm`` null. A ``--full-calib`` file of
``benchmarks/dev_eval.py`` (every candidate scored) is reused where it covers a query.

    python benchmarks/relevance_scores.py --data-dir DIR --output-dir runs/relevance \
        --full-calib trec_dl_passage=runs/hybrid/trec_calib.json
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

DEPTHS = {"trec_dl_passage": 100, "scifact": 30}


def signals(
    data_dir: str, dataset: str, split: str, embedder: Any, limit: int | None, cache: Path
) -> tuple[Any, dict[str, dict[str, Any]]]:
    """Each query's candidates with their cosines; the cosines are kept in ``cache`` and read back on a rerun."""
    from rankrag.data.datasets import load_rerank_dataset

    data = load_rerank_dataset(data_dir, dataset, split=split, limit=limit)
    stored = cache / f"{dataset}_{split}_dense.json"
    known = json.loads(stored.read_text()) if stored.is_file() else {}
    rows = {}
    for query in data.queries:
        candidates = query.candidates[: DEPTHS[dataset]]
        rows[query.qid] = {
            "query": query.query,
            "pids": [c.pid for c in candidates],
            "texts": [c.text for c in candidates],
            "bm25": [c.first_stage_score for c in candidates],
        }
        rows[query.qid]["dense"] = known.get(query.qid) or embedder.similarities(query.query, rows[query.qid]["texts"])
    stored.write_text(json.dumps({qid: row["dense"] for qid, row in rows.items()}))
    return data, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--output-dir", required=True, type=Path)
    parser.add_argument("--lexical-cascade", type=int, default=20)
    parser.add_argument("--full-calib", action="append", default=[], help="DATASET=dev_eval output (all scored)")
    parser.add_argument("--splits", default="calib,dev")
    parser.add_argument("--limit", action="append", default=[], help="DATASET=N: the first N queries of each split")
    args = parser.parse_args()

    from rankrag import RankRAGModel
    from rankrag.eval.hybrid_fit import JudgedQueries, SignalQuery
    from rankrag.eval.relevance_fit import examples, fit_logistic
    from rankrag.model.dense import resolve_embedder
    from rankrag.model.fusion import normalized_first_stage
    from rankrag.model.hybrid import cascade_selection, cheap_scores

    model = RankRAGModel.load()
    shipped = model.hybrid_weights("lexical")
    embedder = resolve_embedder("default")
    assert embedder is not None
    full = {}
    for item in args.full_calib:
        name, _, path = item.partition("=")
        full[name] = next(iter(json.loads(Path(path).read_text())["results"].values()))["scores"]
    args.output_dir.mkdir(parents=True, exist_ok=True)
    limits = {name: int(count) for name, _, count in (item.partition("=") for item in args.limit)}
    sets = {
        name: {
            split: signals(args.data_dir, name, split, embedder, limits.get(name), args.output_dir)
            for split in args.splits.split(",")
        }
        for name in DEPTHS
    }
    calib_groups = []
    for splits in sets.values():
        data, rows = splits["calib"]
        queries = [
            SignalQuery(qid, r["pids"], [0.5] * len(r["pids"]), r["dense"], r["bm25"]) for qid, r in rows.items()
        ]
        calib_groups.append(JudgedQueries(queries, data.qrels, data.relevance_threshold))
    cheap = fit_logistic(examples(calib_groups, "lexical"), ("dense", "first_stage"))
    print("cheap lexical model on calib:", cheap.as_dict(), flush=True)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    for name, splits in sets.items():
        for split, (_, rows) in splits.items():
            started, scored_count = time.monotonic(), 0
            for qid, row in rows.items():
                n = len(row["pids"])
                first = normalized_first_stage(n, row["bm25"])
                probability = [cheap.probability(dense=d, first_stage=f) for d, f in zip(row["dense"], first)]
                chosen = set(sorted(range(n), key=lambda i: (-probability[i], i))[: args.lexical_cascade])
                minmax = cheap_scores(shipped, row["dense"], first, n)
                chosen |= set(cascade_selection(shipped.cascade, minmax, range(n)))
                known = full.get(name, {}).get(qid) if split == "calib" else None
                llm: list[float | None] = [None] * n
                if known is not None and known["pids"][:n] == row["pids"]:
                    llm = list(known["llm"][:n])
                else:
                    order = sorted(chosen)
                    for i, value in zip(order, model.score(row["query"], [row["texts"][i] for i in order])):
                        llm[i] = value
                    scored_count += len(order)
                row["llm"] = llm
                del row["texts"]
            seconds = time.monotonic() - started
            report = {
                "benchmark": "relevance_scores",
                "command": " ".join([sys.executable, *sys.argv]),
                "machine": machine(),
                "date": time.strftime("%Y-%m-%d"),
                "dataset": name,
                "split": split,
                "depth": DEPTHS[name],
                "cheap_model": cheap.as_dict(),
                "scored": scored_count,
                "seconds": round(seconds, 1),
                "queries": rows,
            }
            (args.output_dir / f"{name}_{split}.json").write_text(json.dumps(report), encoding="utf-8")
            print(f"{name} {split}: {scored_count} passages scored in {seconds:.0f} s", flush=True)


if __name__ == "__main__":
    main()

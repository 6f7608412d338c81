"""Batch drift: how much P(True) moves between scoring a passage alone and scoring it in a batch.

For each precision (float32 and bfloat16 by default, on CPU) and real passages (the SQuAD paragraphs in
tests/fixtures, or TREC DL candidates with --data-dir), every passage is scored alone (a batch of one) and
in batches of --batch-size with the other passages of its query, with the library's default options. The
drift is |batched - alone|; a ranking flip is a query whose order differs between the two. One run prints
the max and mean drift of every precision side by side:

    python benchmarks/batch_drift.py [--queries 6] [--passages 16] [--batch-size 16] [--json FILE]
    python benchmarks/batch_drift.py --dtypes float32 bfloat16 float16 --data-dir /path/to/shared/data
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402

from rankrag import RankRAGModel  # noqa: E402

FIXTURES = _common.REPO_ROOT / "tests" / "fixtures"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--queries", type=int, default=6)
    parser.add_argument("--passages", type=int, default=16, help="passages per query")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--passage-chars", type=int, default=600, help="passages are cut to this many characters")
    parser.add_argument("--data-dir", default=None, help="use TREC DL bm25_top100 candidates from this directory")
    parser.add_argument("--json", metavar="FILE", help="also write the result to FILE")
    return parser.parse_args(argv)


def squad_queries(count: int, per_query: int, chars: int) -> list[tuple[str, list[str]]]:
    """Each query: a SQuAD question with its own paragraph and other paragraphs (real text, varied length)."""
    passages = [
        json.loads(line) for line in (FIXTURES / "squad_passages.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    questions = [
        json.loads(line) for line in (FIXTURES / "squad_questions.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    by_pid = {p["pid"]: p["text"] for p in passages}
    result = []
    for number, question in enumerate(questions[::7][:count]):
        others = [p["text"] for p in passages[number * per_query :][: per_query - 1]]
        result.append((question["question"], [t[:chars] for t in [by_pid[question["gold_pid"]], *others]]))
    return result


def trec_queries(data_dir: Path, count: int, per_query: int, chars: int) -> list[tuple[str, list[str]]]:
    rows = _common.read_trec(data_dir)[:count]
    return [(row["query"], [c["text"][:chars] for c in row["candidates"][:per_query]]) for row in rows]


def measure(model: RankRAGModel, queries: list[tuple[str, list[str]]], batch_size: int) -> dict[str, Any]:
    drifts: list[float] = []
    flips = 0
    start = time.perf_counter()
    for question, passages in queries:
        alone = [model.score(question, [p], batch_size=1)[0] for p in passages]
        batched = model.score(question, passages, batch_size=batch_size)
        drifts += [abs(a - b) for a, b in zip(alone, batched)]
        order = lambda scores: sorted(range(len(scores)), key=lambda i: (-scores[i], i))  # noqa: E731
        flips += order(alone) != order(batched)
    return {
        "max_drift": max(drifts),
        "mean_drift": statistics.fmean(drifts),
        "median_drift": statistics.median(drifts),
        "scores_compared": len(drifts),
        "queries_with_a_ranking_flip": flips,
        "queries": len(queries),
        "seconds": round(time.perf_counter() - start, 1),
    }


def main(argv: Sequence[str]) -> None:
    args = parse_args(argv)
    if args.data_dir:
        queries = trec_queries(Path(args.data_dir), args.queries, args.passages, args.passage_chars)
    else:
        queries = squad_queries(args.queries, args.passages, args.passage_chars)
    result: dict[str, Any] = {
        **_common.stamp([sys.argv[0], *argv]),
        "machine": _common.machine(),
        "data": "TREC DL bm25_top100" if args.data_dir else "tests/fixtures SQuAD paragraphs",
        "batch_size": args.batch_size,
        "drift": {},
    }
    for dtype in args.dtypes:
        model = RankRAGModel.load(dtype=dtype, device=args.device)
        result["drift"][dtype] = measure(model, queries, args.batch_size)
    print(f"{'precision':<10} {'max |batched - alone|':>22} {'mean':>10} {'ranking flips':>14}")
    for dtype, row in result["drift"].items():
        print(
            f"{dtype:<10} {row['max_drift']:>22.2e} {row['mean_drift']:>10.2e} "
            f"{row['queries_with_a_ranking_flip']:>7}/{row['queries']:<6}"
        )
    _common.write_json(result, args.json)


if __name__ == "__main__":
    main(sys.argv[1:])

"""Quality effect of the question-first ranking prompt (the prompt whose whole prefix, question included,
is shared by all passages and cached): nDCG@10 of LLM-only reranking with the paper's passage-first
prompt against the question-first one, on the dev split of TREC DL (graded qrels, linear gain, as
trec_eval's ndcg_cut via ir_measures; queries without judgements are skipped).

    python benchmarks/question_first_quality.py [--limit 15] [--top-n 30] [--json FILE]

Reported: mean nDCG@10 of BM25 (the input order), passage-first and question-first; the per-query
paired difference with a seeded bootstrap 95 % interval; wins/ties/losses; scoring time per variant.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Sequence
from statistics import fmean
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402

from rankrag import PromptTemplates, RankRAGModel  # noqa: E402
from rankrag.data.datasets import load_rerank_dataset  # noqa: E402


def ndcg_at_10(rankings: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    """Per-query nDCG@10 of ordered pid lists (scores decrease with position, so no re-breaking of ties)."""
    import ir_measures
    from ir_measures import nDCG

    run = {qid: {pid: float(len(r) - i) for i, pid in enumerate(r)} for qid, r in rankings.items() if qid in qrels}
    judged = {qid: {pid: int(g) for pid, g in qrels[qid].items()} for qid in run}
    return {m.query_id: float(m.value) for m in ir_measures.iter_calc([nDCG @ 10], judged, run)}


def bootstrap_interval(differences: Sequence[float], seed: int = 20240702, samples: int = 10000) -> tuple[float, float]:
    rng = random.Random(seed)
    means = sorted(fmean(rng.choices(differences, k=len(differences))) for _ in range(samples))
    return means[int(0.025 * samples)], means[int(0.975 * samples) - 1]


def main(argv: Sequence[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--split", default="dev")
    parser.add_argument("--limit", type=int, default=15, help="first N dev queries by id")
    parser.add_argument("--top-n", type=int, default=30, help="rerank the BM25 top N of each query")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    dataset = load_rerank_dataset(
        args.data_dir or _common.default_data_dir(), "trec_dl_passage", split=args.split, limit=args.limit
    )
    model = RankRAGModel.load()
    variants = {
        "passage_first": model,
        "question_first": model.with_options(templates=PromptTemplates(question_first=True)),
    }
    rankings: dict[str, dict[str, list[str]]] = {"bm25": {}, **{name: {} for name in variants}}
    seconds = {name: 0.0 for name in variants}
    for number, query in enumerate(dataset.queries, start=1):
        candidates = query.candidates[: args.top_n]
        pids, texts = [c.pid for c in candidates], [c.text for c in candidates]
        rankings["bm25"][query.qid] = pids
        for name, handle in variants.items():
            start = time.perf_counter()
            scores = handle.score(query.query, texts)
            seconds[name] += time.perf_counter() - start
            order = sorted(range(len(pids)), key=lambda i: (-scores[i], i))
            rankings[name][query.qid] = [pids[i] for i in order]
        print(f"{number}/{len(dataset.queries)} {query.qid}", file=sys.stderr, flush=True)

    per_query = {name: ndcg_at_10(ranking, dataset.qrels) for name, ranking in rankings.items()}
    qids = sorted(per_query["passage_first"])
    differences = [per_query["question_first"][q] - per_query["passage_first"][q] for q in qids]
    low, high = bootstrap_interval(differences)
    result: dict[str, Any] = {
        "dataset": "trec_dl_passage",
        "split": args.split,
        "n_queries": len(qids),
        "top_n": args.top_n,
        "model": model.name,
        "ndcg@10": {name: round(fmean(values[q] for q in qids), 4) for name, values in per_query.items()},
        "question_first_minus_passage_first": {
            "mean": round(fmean(differences), 4),
            "bootstrap_95": [round(low, 4), round(high, 4)],
            "wins": sum(d > 1e-9 for d in differences),
            "ties": sum(abs(d) <= 1e-9 for d in differences),
            "losses": sum(d < -1e-9 for d in differences),
        },
        "per_query_ndcg@10": {name: {q: round(values[q], 4) for q in qids} for name, values in per_query.items()},
        "scoring_seconds": {name: round(s, 1) for name, s in seconds.items()},
        "machine": _common.machine(),
        **_common.stamp(["benchmarks/question_first_quality.py", *argv]),
    }
    _common.write_json(result, args.json)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])

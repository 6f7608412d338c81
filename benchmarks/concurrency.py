"""Cross-caller batching: 16 concurrent queries through the async reranking paths, against sequential calls.

For each path (core ``RankRAGModel.arerank``, LangChain ``RankRAGReranker.acompress_documents``,
LlamaIndex ``RankRAGReranker.apostprocess_nodes``) three modes run over the same queries and passages
(real TREC DL queries with their BM25 candidates):

  sequential     ``await`` one query after another
  coalesced      all queries at once (``asyncio.gather``); the model's coalescer merges them into
                 shared forward passes (the default)
  threads        all queries at once with ``ScoringOptions(coalesce=False)``: one worker thread per
                 call, each running its own forward passes (the behaviour before coalescing)

Reported: passages/s per mode (median over rounds), coalesced/sequential ratio, forward rounds the
coalescer used, and the largest score difference between concurrent and sequential results.

    python benchmarks/concurrency.py [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402

from rankrag import RankRAGModel  # noqa: E402
from rankrag.model import coalescer as batching  # noqa: E402

Rerank = Callable[[str, list[str]], Awaitable[list[float]]]


def core_path(handle: RankRAGModel) -> Rerank:
    async def rerank(query: str, passages: list[str]) -> list[float]:
        ranked = await handle.arerank(query, passages, alpha=1.0)
        return [p.metadata["llm_score"] for p in sorted(ranked, key=lambda p: p.index)]

    return rerank


def langchain_path(handle: RankRAGModel) -> Rerank:
    from langchain_core.documents import Document

    from rankrag_langchain import RankRAGReranker

    reranker = RankRAGReranker(model=handle, top_n=None, alpha=1.0)

    async def rerank(query: str, passages: list[str]) -> list[float]:
        documents = await reranker.acompress_documents([Document(page_content=p) for p in passages], query)
        return [d.metadata["llm_score"] for d in sorted(documents, key=lambda d: d.metadata["retrieval_rank"])]

    return rerank


def llamaindex_path(handle: RankRAGModel) -> Rerank:
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from rankrag_llamaindex import RankRAGReranker
    from rankrag_llamaindex._convert import LLM_SCORE_KEY

    reranker = RankRAGReranker(handle, top_n=None, alpha=1.0)

    async def rerank(query: str, passages: list[str]) -> list[float]:
        nodes = [NodeWithScore(node=TextNode(text=p, id_=str(i))) for i, p in enumerate(passages)]
        ranked = await reranker.apostprocess_nodes(nodes, QueryBundle(query))
        by_id = {n.node.node_id: n for n in ranked}
        return [float(by_id[str(i)].node.metadata[LLM_SCORE_KEY]) for i in range(len(passages))]

    return rerank


PATHS = {"core": core_path, "langchain": langchain_path, "llamaindex": llamaindex_path}


async def sequential(rerank: Rerank, work: list[tuple[str, list[str]]]) -> list[list[float]]:
    return [await rerank(query, passages) for query, passages in work]


async def concurrent(rerank: Rerank, work: list[tuple[str, list[str]]]) -> list[list[float]]:
    return list(await asyncio.gather(*(rerank(query, passages) for query, passages in work)))


def main(argv: Sequence[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 passages per query, core path, one round")
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--queries", type=int, default=16)
    parser.add_argument("--passages-per-query", type=int, default=None, help="default 10 (3 with --quick)")
    parser.add_argument("--rounds", type=int, default=None, help="default 2 (1 with --quick)")
    parser.add_argument("--paths", nargs="*", choices=sorted(PATHS), default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    args = parser.parse_args(argv)
    per_query = args.passages_per_query or (3 if args.quick else 10)
    rounds = args.rounds or (1 if args.quick else 2)
    paths = args.paths or (["core"] if args.quick else list(PATHS))

    model = RankRAGModel.load(device=args.device, dtype=args.dtype)
    coalescing = model.with_options(scoring_options=replace(model.scoring_options, coalesce=True))
    threaded = model.with_options(scoring_options=replace(model.scoring_options, coalesce=False))
    rows = _common.read_trec(Path(args.data_dir) if args.data_dir else _common.default_data_dir())[: args.queries]
    work = [(row["query"], [c["text"] for c in row["candidates"][:per_query]]) for row in rows]
    n_passages = sum(len(p) for _, p in work)
    coalescer = batching.coalescer_for(model.model)

    modes: dict[str, tuple[Callable[..., Awaitable[list[list[float]]]], RankRAGModel]] = {
        "sequential": (sequential, coalescing),
        "coalesced": (concurrent, coalescing),
        "threads": (concurrent, threaded),
    }
    results: dict[str, Any] = {}
    for path in paths:
        asyncio.run(sequential(PATHS[path](model), work[:1]))  # warm-up and imports
        times: dict[str, list[float]] = {mode: [] for mode in modes}
        scores: dict[str, list[list[float]]] = {}
        forward_rounds: dict[str, int] = {}
        for round_number in range(rounds):
            names = list(modes)
            shift = round_number % len(names)
            for mode in names[shift:] + names[:shift]:
                runner, handle = modes[mode]
                rerank = PATHS[path](handle)
                before = coalescer.rounds
                start = time.perf_counter()
                scores[mode] = asyncio.run(runner(rerank, work))
                times[mode].append(time.perf_counter() - start)
                forward_rounds[mode] = coalescer.rounds - before
                print(
                    f"{path} round {round_number + 1}/{rounds} {mode}: {times[mode][-1]:.2f} s",
                    file=sys.stderr,
                    flush=True,
                )
        pps = {mode: round(n_passages / _common.median(t), 3) for mode, t in times.items()}
        results[path] = {
            "pps": pps,
            "ratio_coalesced_vs_sequential": round(
                _common.median([s / c for s, c in zip(times["sequential"], times["coalesced"])]), 3
            ),
            "ratio_threads_vs_sequential": round(
                _common.median([s / c for s, c in zip(times["sequential"], times["threads"])]), 3
            ),
            "coalescer_rounds": forward_rounds,
            "max_abs_diff_vs_sequential": {
                mode: max(abs(a - b) for got, ref in zip(scores[mode], scores["sequential"]) for a, b in zip(got, ref))
                for mode in ("coalesced", "threads")
            },
            "times_s": {mode: [round(t, 3) for t in values] for mode, values in times.items()},
        }
    result = {
        "queries": len(work),
        "passages_per_query": per_query,
        "n_passages": n_passages,
        "device": str(model.device),
        "dtype": str(model.model.dtype).removeprefix("torch."),
        "rounds": rounds,
        "paths": results,
        "machine": _common.machine(),
        **_common.stamp(["benchmarks/concurrency.py", *argv]),
    }
    _common.write_json(result, args.json)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])

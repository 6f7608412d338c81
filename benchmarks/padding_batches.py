"""Padding-aware batching of the LLM's scoring, measured in ONE run.

1. What one forward pass costs besides its tokens: the decoder is timed on right-padded batches of
   ``rows x length`` (the same call scoring makes), and ``seconds = a + c * rows * length`` is fitted by least
   squares; ``a / c`` is the fixed cost of a pass in tokens, what ``FORWARD_COST_TOKENS`` stands for.
2. The scoring time of real work: per TREC DL dev query, the passages the default hybrid rerank sends to the
   LLM (the cascade's best m of N = 100) and all N, scored by ``RankRAGModel.score`` with the old batching
   (fixed runs of ``batch_size`` in length order) and the padding-aware one, in rotated rounds. Each ratio is the
   median over rounds of new / old; the padded-token counts and the largest score difference are printed too.
3. The same for the dense signal: the embedded MiniLM's cosine of all N per query, embedded in input-order
   batches of 32 (before) and in padding-aware batches (now).

    python benchmarks/padding_batches.py [--queries 3] [--rounds 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402


def fixed_batches(encoded: Sequence[Sequence[int]], batch_size: int, forward_cost_tokens: int = 0) -> list[list[int]]:
    """The batching before this change: length order, cut every ``batch_size``."""
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def input_order_similarities(embedder: Any, query: str, passages: Sequence[str]) -> list[float]:
    """The embedder before this change: input-order batches of ``batch_size``, each padded to its longest text."""
    import torch

    texts = [query, *passages]
    rows = []
    with torch.inference_mode():
        for start in range(0, len(texts), embedder.batch_size):
            batch = embedder.tokenizer(
                texts[start : start + embedder.batch_size],
                padding=True,
                truncation=True,
                max_length=embedder.layout.max_seq_length,
                return_tensors="pt",
            )
            hidden = embedder.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            rows.append(torch.nn.functional.normalize(pooled, dim=-1))
    vectors = torch.cat(rows)
    return [float(v) for v in (vectors[1:] @ vectors[0]).tolist()]


def padded_tokens(encoded: Sequence[Sequence[int]], batches: Sequence[Sequence[int]]) -> int:
    return sum(max(len(encoded[i]) for i in batch) * len(batch) for batch in batches)


def forward_cost(model: Any, pad_id: int, token: int, repeats: int) -> dict[str, Any]:
    from rankrag.model.forward_scoring import last_hidden_states

    shapes = [(rows, length) for rows in (1, 4, 16) for length in (32, 128, 256)]
    last_hidden_states(model, [[token] * 16], pad_id)  # warm up
    timings = []
    for rows, length in shapes:
        batch = [[token] * length for _ in range(rows)]
        runs = []
        for _ in range(repeats):
            started = time.perf_counter()
            last_hidden_states(model, batch, pad_id)
            runs.append(time.perf_counter() - started)
        timings.append((rows * length, statistics.median(runs)))
    n = len(timings)
    mean_x = sum(x for x, _ in timings) / n
    mean_y = sum(y for _, y in timings) / n
    slope = sum((x - mean_x) * (y - mean_y) for x, y in timings) / sum((x - mean_x) ** 2 for x, _ in timings)
    intercept = mean_y - slope * mean_x
    return {
        "seconds_per_pass": round(intercept, 4),
        "seconds_per_token": slope,
        "pass_cost_in_tokens": round(intercept / slope),
        "points": [{"tokens": x, "seconds": round(y, 4)} for x, y in timings],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data-dir", default=str(_common.default_data_dir()))
    parser.add_argument("--queries", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="timings per shape in part 1")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    from rankrag import RankRAGModel
    from rankrag.data.datasets import load_rerank_dataset
    from rankrag.model import forward_scoring
    from rankrag.model.batching import FORWARD_COST_TOKENS
    from rankrag.model.dense import TransformerEmbedder

    model = RankRAGModel.load()
    pad_id = int(model.tokenizer.pad_token_id)
    token = int(model.tokenizer("the", add_special_tokens=False)["input_ids"][0])
    cost = forward_cost(model.model, pad_id, token, args.repeats)
    print(f"forward pass: {cost['seconds_per_pass']:.4f} s + tokens; one pass ~ {cost['pass_cost_in_tokens']} tokens")

    data = load_rerank_dataset(args.data_dir, "trec_dl_passage", split="dev", limit=args.queries)
    work: dict[str, list[tuple[str, list[str]]]] = {"cascade": [], "all": []}
    for query in data.queries:
        texts = [c.text for c in query.candidates[:100]]
        plan = model.plan_ranking(
            query.query, texts, first_stage_scores=[c.first_stage_score for c in query.candidates[:100]]
        )
        work["cascade"].append((query.query, plan.llm_passages))
        work["all"].append((query.query, texts))

    batchings: dict[str, Callable[..., list[list[int]]]] = {
        "fixed": fixed_batches,
        "padding_aware": forward_scoring.length_sorted_batches,
    }
    original = forward_scoring.length_sorted_batches
    batch_size = model.scoring_options.batch_size

    def run(batching: str, name: str) -> tuple[float, list[list[float]]]:
        forward_scoring.length_sorted_batches = batchings[batching]  # type: ignore[assignment]
        try:
            started = time.perf_counter()
            scores = [model.score(query, passages) for query, passages in work[name]]
            return time.perf_counter() - started, scores
        finally:
            forward_scoring.length_sorted_batches = original

    tokens = {
        name: {
            batching: sum(
                padded_tokens(encoded, batchings[batching](encoded, batch_size))
                for encoded in (model.encode_ranking(q, p) for q, p in rows)
            )
            for batching in batchings
        }
        for name, rows in work.items()
    }
    seconds: dict[str, dict[str, list[float]]] = {name: {b: [] for b in batchings} for name in work}
    largest_difference = 0.0
    pairs = [(name, batching) for name in work for batching in batchings]
    for round_index in range(args.rounds):
        shift = round_index % len(pairs)
        scored: dict[tuple[str, str], list[list[float]]] = {}
        for name, batching in pairs[shift:] + pairs[:shift]:
            elapsed, scored[(name, batching)] = run(batching, name)
            seconds[name][batching].append(elapsed)
        for name in work:
            for old, new in zip(scored[(name, "fixed")], scored[(name, "padding_aware")]):
                largest_difference = max(largest_difference, max(abs(a - b) for a, b in zip(old, new)))
        print(
            f"round {round_index + 1}: " + ", ".join(f"{n}/{b} {seconds[n][b][-1]:.1f} s" for n, b in pairs),
            flush=True,
        )
    embedder = model.embedder
    assert isinstance(embedder, TransformerEmbedder) and embedder.layout.pooling == "mean" and embedder.layout.normalize
    dense_methods: dict[str, Callable[[str, list[str]], list[float]]] = {
        "fixed": lambda q, p: input_order_similarities(embedder, q, p),
        "padding_aware": embedder.similarities,
    }
    dense_seconds: dict[str, list[float]] = {name: [] for name in dense_methods}
    for round_index in range(args.rounds):
        order = list(dense_methods)[round_index % 2 :] + list(dense_methods)[: round_index % 2]
        values = {}
        for name in order:
            started = time.perf_counter()
            values[name] = [dense_methods[name](q, p) for q, p in work["all"]]
            dense_seconds[name].append(time.perf_counter() - started)
        for old, new in zip(values["fixed"], values["padding_aware"]):
            largest_difference = max(largest_difference, max(abs(a - b) for a, b in zip(old, new)))
    seconds["dense"] = dense_seconds
    ratios = {
        f"{name}: padding_aware/fixed": round(
            statistics.median(a / b for a, b in zip(seconds[name]["padding_aware"], seconds[name]["fixed"])), 3
        )
        for name in seconds
    }
    report: dict[str, Any] = {
        **_common.stamp(sys.argv),
        "machine": _common.machine(),
        "queries": len(data.queries),
        "batch_size": batch_size,
        "forward_cost_tokens": FORWARD_COST_TOKENS,
        "forward_pass": cost,
        "padded_tokens": tokens,
        "passages": {name: sum(len(p) for _, p in rows) for name, rows in work.items()},
        "median_seconds": {n: {b: round(statistics.median(v), 2) for b, v in s.items()} for n, s in seconds.items()},
        "ratios": ratios,
        "largest_score_difference": largest_difference,
    }
    print(json.dumps({"padded_tokens": tokens, "ratios": ratios, "largest_score_difference": largest_difference}))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=1)


if __name__ == "__main__":
    main()

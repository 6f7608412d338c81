"""What the roles cost: time per generated token in the answerer role against the base model, and scoring time of
the merged ranker against the base, measured in one run (rounds interleaved, so load on the machine hits all alike).

Models: ``base`` (no adapter), ``shipped`` (the shipped ranking adapter merged; its answerer is the base weights,
reached by the role hooks), and, with ``--answerer DIR``, the shipped ranker with DIR as the answerer (hooks add
DIR's low-rank terms and remove the ranker's). Generation is greedy, ``--tokens`` new tokens forced (no early end).

    python benchmarks/role_cost.py --answerer rankrag/adapters/smollm2-135m-answerer --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from statistics import median
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import machine  # noqa: E402

QUESTION = "Which river flows through Paris, and where does it reach the sea?"
PASSAGES = [
    "The Seine is a 777-kilometre-long river in northern France. It flows through Paris and into the English "
    "Channel at Le Havre.",
    "The Loire is the longest river in France and flows into the Atlantic Ocean at Saint-Nazaire.",
]
RANKING_PASSAGES = [f"Passage {i}: " + PASSAGES[i % 2] for i in range(20)]


def generation_seconds(model: Any, tokens: int) -> float:
    import torch

    from rankrag.model import roles

    ids = torch.tensor([model.answer_prompt_ids(QUESTION, PASSAGES)])
    started = time.perf_counter()
    with torch.inference_mode(), roles.weights_of(model.model, "answerer"):
        model.model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=tokens,
            min_new_tokens=tokens,
            do_sample=False,
            pad_token_id=model.tokenizer.pad_token_id,
        )
    return (time.perf_counter() - started) / tokens


def scoring_seconds(model: Any) -> float:
    started = time.perf_counter()
    model.score(QUESTION, RANKING_PASSAGES)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--answerer", help="an answer adapter directory")
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()

    from rankrag import RankRAGModel

    models = {"base": RankRAGModel.load(adapter=None), "shipped": RankRAGModel.load()}
    if args.answerer:
        models["answerer"] = RankRAGModel.load(answerer_adapter=args.answerer)
    for model in models.values():  # warm-up
        generation_seconds(model, 4)
        scoring_seconds(model)
    per_token: dict[str, list[float]] = {name: [] for name in models}
    scoring: dict[str, list[float]] = {name: [] for name in models}
    for round_number in range(args.rounds):
        order = list(models)[round_number % len(models) :] + list(models)[: round_number % len(models)]
        for name in order:
            per_token[name].append(generation_seconds(models[name], args.tokens))
            scoring[name].append(scoring_seconds(models[name]))
    base_token, base_scoring = median(per_token["base"]), median(scoring["base"])
    report = {
        "machine": machine(),
        "args": {k: str(v) for k, v in vars(args).items()},
        "ms_per_token": {name: round(1000 * median(v), 2) for name, v in per_token.items()},
        "per_token_vs_base": {name: round(median(v) / base_token, 3) for name, v in per_token.items()},
        "scoring_20_ms": {name: round(1000 * median(v), 1) for name, v in scoring.items()},
        "scoring_vs_base": {name: round(median(v) / base_scoring, 3) for name, v in scoring.items()},
    }
    print(json.dumps(report, indent=2))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()

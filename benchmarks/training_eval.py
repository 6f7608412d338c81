"""Dev-split figures for the training docs: tuned adapter vs zero-shot base vs first stage.

nDCG@10 on TREC DL and SciFact (``rankrag eval rerank`` logic), QA exact match with reranked vs
retrieval-order top-5 (``rankrag eval qa`` logic). Both models are loaded once. Writes one JSON file.

    python benchmarks/training_eval.py --data-dir DIR --adapter rankrag/adapters/smollm2-135m-rankrag \
        --output runs/eval/dev.json [--candidates 100] [--qa-limit 60]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--adapter", required=True, help="adapter directory of the tuned model")
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--split", default="dev")
    parser.add_argument("--candidates", "--top-n", dest="candidates", type=int, default=100)
    parser.add_argument("--qa-limit", type=int, default=None, help="first N questions (by id) per QA set")
    parser.add_argument("--rerank", default="trec_dl_passage,scifact")
    parser.add_argument("--qa", default="squad_v1.1_dev,hotpotqa_dev_distractor")
    parser.add_argument("--models", default="tuned,zero_shot")
    parser.add_argument("--qa-systems", default="retrieval_order,rankrag,oracle")
    args = parser.parse_args()

    from transformers.utils import logging as transformers_logging

    from rankrag import RankRAGModel
    from rankrag.data.datasets import load_qa_dataset, load_rerank_dataset
    from rankrag.eval.qa import evaluate_qa
    from rankrag.eval.rerank import evaluate_rerank

    transformers_logging.set_verbosity_error()
    adapters = {"tuned": args.adapter, "zero_shot": None}
    results: dict[str, object] = {
        "split": args.split,
        "candidates": args.candidates,
        "qa_limit": args.qa_limit,
        "runs": [],
    }
    runs: list[dict[str, object]] = results["runs"]  # type: ignore[assignment]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    models = {label: RankRAGModel.load(adapter=adapters[label], device="cpu") for label in args.models.split(",")}
    for name in filter(None, args.rerank.split(",")):
        data = load_rerank_dataset(args.data_dir, name, split=args.split)
        for label, model in models.items():
            started = time.monotonic()
            report = evaluate_rerank(
                model, data, ["first_stage", "rankrag"], candidates=args.candidates, split=args.split, progress=False
            )
            runs.append({"model": label, "kind": "rerank", "wall_s": round(time.monotonic() - started, 1), **report})
            print(label, name, {k: round(v["ndcg@10"], 4) for k, v in report["systems"].items()}, flush=True)
            args.output.write_text(json.dumps(results, indent=2))
    for name in filter(None, args.qa.split(",")):
        items = load_qa_dataset(args.data_dir, name, split=args.split, limit=args.qa_limit)
        for label, model in models.items():
            started = time.monotonic()
            report = evaluate_qa(
                model, name, items, top_k=5, split=args.split, progress=False, systems=args.qa_systems.split(",")
            )
            runs.append({"model": label, "kind": "qa", "wall_s": round(time.monotonic() - started, 1), **report})
            print(label, name, {k: round(v["em"], 4) for k, v in report["systems"].items()}, flush=True)
            args.output.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

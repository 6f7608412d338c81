"""Abstention on SQuAD: how often ``answer(score_threshold=t)`` declines when the gold paragraph is among the 10
passages and when it was removed, and the answers' token F1 where it does answer. ``--split dev`` measures;
``--split train`` (SQuAD has no calib split: every non-dev article is a training article) also prints the threshold
to ship, the highest that declines at most 5 % of the questions whose gold is there.

Each question's 10 passages (the gold paragraph and 9 others of its article) are scored once with the LLM;
the two cases rank the same scores (``RankRAGModel.rank_scored``): the 10 passages, and the 9 without the gold.
``--first-stage`` says what retrieved them: ``order`` (the data set's shuffled order, a retriever that knows
nothing; lexical kind, no scores), ``bm25`` (a lexical retriever: BM25 over the question's passages, its order and
scores, lexical kind) or ``dense`` (MiniLM, as a vector store such as `rankrag ask`'s Chroma returns them: cosine order
and scores, ``first_stage="dense"``). A question is declined when no passage of its top 5 reaches ``t``; the
thresholds 0.1 to 0.7 in steps of 0.05 are reported side by side. ``--answer-threshold`` also generates the answers (the shipped
roles) for the answerable case at that threshold.

    python benchmarks/abstention.py --data-dir DIR --limit 40 --answer-threshold 0.5 --output runs/abstention.json \
        --scores runs/abstention_scores.json
    python benchmarks/abstention.py --data-dir DIR --split train --limit 60 --first-stage bm25 \
        --output runs/abstention_train.json --scores runs/abstention_train_scores.json   # prints the chosen threshold
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from statistics import fmean
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import machine  # noqa: E402

THRESHOLDS = tuple(round(0.05 * k, 2) for k in range(2, 15))
# Off dev, the threshold to ship: the highest that declines at most this share of the questions whose gold is there.
MAX_FALSE_DECLINES = 0.05
TOP_K = 5


def ranked(
    model: Any, question: str, texts: list[str], llm: list[float], first_stage: str, indexes: list[int]
) -> list[Any]:
    """The top 5 of the passages at ``indexes`` from their saved LLM scores, handed over as the first stage would:
    in the given order (``order``), or in its score order with its scores (``bm25`` over these passages, ``dense``
    cosines)."""
    scores: list[float] | None = None
    if first_stage == "bm25":
        from rankrag.train.sources import bm25_index, bm25_tokens

        index = bm25_index([texts[i] for i in indexes])
        scores = [float(s) for s in index.get_scores(bm25_tokens(question))]
    elif first_stage == "dense":
        scores = list(model.embedder.similarities(question, [texts[i] for i in indexes]))
    if scores is not None:
        pairs = sorted(zip(indexes, scores), key=lambda pair: -pair[1])
        indexes, scores = [i for i, _ in pairs], [s for _, s in pairs]
    return model.rank_scored(
        [texts[i] for i in indexes],
        [llm[i] for i in indexes],
        query=question,
        top_k=TOP_K,
        first_stage="dense" if first_stage == "dense" else "lexical",
        first_stage_scores=scores,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--answer-threshold", type=float)
    parser.add_argument("--answerer-adapter", default="default")
    parser.add_argument("--first-stage", choices=("order", "bm25", "dense"), default="order")
    parser.add_argument(
        "--split",
        choices=("train", "dev"),
        default="dev",
        help="dev to measure; train to choose the threshold (SQuAD has no calib split: every non-dev article is train)",
    )
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument(
        "--scores", type=Path, help="JSON of the LLM's P(True) per question: read where it exists, else written"
    )
    args = parser.parse_args()

    from rankrag import RankRAGModel
    from rankrag.data.datasets import load_qa_dataset
    from rankrag.eval.metrics import f1_score
    from rankrag.eval.qa import context_text

    answerer = None if args.answerer_adapter == "none" else args.answerer_adapter
    model = RankRAGModel.load(answerer_adapter=answerer)
    items = [
        i
        for i in load_qa_dataset(args.data_dir, "squad_v1.1_dev", split=args.split)
        if any(c.is_gold for c in i.contexts)
    ]
    items = items[: args.limit]
    saved: dict[str, list[float]] = (
        json.loads(args.scores.read_text()) if args.scores is not None and args.scores.exists() else {}
    )
    if args.first_stage == "dense" and model.embedder is None:
        parser.error("--first-stage dense needs the model's embedding model")
    started = time.monotonic()
    cases: list[dict[str, Any]] = []
    for item in items:
        texts = [context_text(c) for c in item.contexts]
        llm = saved.get(item.id) or model.score(item.question, texts)
        saved[item.id] = llm
        kept = ranked(model, item.question, texts, llm, args.first_stage, list(range(len(texts))))
        others = [i for i, c in enumerate(item.contexts) if not c.is_gold]
        removed = ranked(model, item.question, texts, llm, args.first_stage, others)
        cases.append({"item": item, "texts": texts, "kept": kept, "removed": removed})
    scoring_s = time.monotonic() - started
    if args.scores is not None:
        args.scores.parent.mkdir(parents=True, exist_ok=True)
        args.scores.write_text(json.dumps(saved), encoding="utf-8")

    def best(ranked: list[Any]) -> float:
        return max((p.score for p in ranked), default=0.0)

    table = {
        f"{t}": {
            "declines with gold": round(fmean(float(best(c["kept"]) < t) for c in cases), 3),
            "declines without gold": round(fmean(float(best(c["removed"]) < t) for c in cases), 3),
        }
        for t in THRESHOLDS
    }
    for t, row in table.items():
        print(f"t={t}: {row}", flush=True)
    report: dict[str, Any] = {"machine": machine(), "args": {k: str(v) for k, v in vars(args).items()}}
    report |= {"questions": len(cases), "scoring_seconds": round(scoring_s, 1), "thresholds": table}
    if args.split != "dev":
        allowed = [float(t) for t, row in table.items() if row["declines with gold"] <= MAX_FALSE_DECLINES]
        report["chosen threshold"] = max(allowed, default=None)
        print(f"chosen on {args.split}:", report["chosen threshold"], flush=True)
    if args.answer_threshold is not None:
        t = args.answer_threshold
        f1s = []
        for case in cases:
            used = [p.text for p in case["kept"] if p.score >= t]  # what answer(score_threshold=t) gives the answerer
            if used:
                f1s.append(f1_score(model.generate(case["item"].question, used), case["item"].answers))
        report["answered at threshold"] = {
            "threshold": t,
            "answered": len(f1s),
            "f1": round(fmean(f1s), 3) if f1s else None,
        }
        print(report["answered at threshold"], flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()

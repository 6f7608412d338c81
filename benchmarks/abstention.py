"""Abstention on dev SQuAD: how often ``answer(score_threshold=t)`` declines when the gold paragraph is among the 10
passages and when it was removed, and the answers' token F1 where it does answer.

Each question's 10 dev passages (the gold paragraph and 9 others of its article) are scored once with the LLM;
the two cases rank the same scores (``RankRAGModel.rank_scored``): the 10 passages, and the 9 without the gold.
``--first-stage`` says what retrieved them: ``order`` (the data set's shuffled order, a retriever that knows
nothing; lexical kind, no scores) or ``dense`` (MiniLM, as a vector store such as `rankrag ask`'s Chroma returns them:
cosine order and scores, ``first_stage="dense"``). A question is declined when no passage of its top 5 reaches
``t``. ``--thresholds`` are reported side by side; ``--answer-threshold`` also generates the answers (the
shipped roles) for the answerable case at that threshold. The threshold to ship is chosen on calib data, not here.

    python benchmarks/abstention.py --data-dir DIR --limit 40 --answer-threshold 0.5 --output runs/abstention.json \
        --scores runs/abstention_scores.json
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

THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
TOP_K = 5


def ranked(
    model: Any, question: str, texts: list[str], llm: list[float], cosines: list[float] | None, indexes: list[int]
) -> list[Any]:
    """The top 5 of the passages at ``indexes`` from their saved LLM scores, handed over as the first stage would:
    in the given order (``cosines`` None), or in cosine order with the cosines as a dense retriever's scores."""
    if cosines is not None:
        indexes = sorted(indexes, key=lambda i: -cosines[i])
    return model.rank_scored(
        [texts[i] for i in indexes],
        [llm[i] for i in indexes],
        query=question,
        top_k=TOP_K,
        first_stage="lexical" if cosines is None else "dense",
        first_stage_scores=None if cosines is None else [cosines[i] for i in indexes],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--answer-threshold", type=float)
    parser.add_argument("--answerer-adapter", default="default")
    parser.add_argument("--first-stage", choices=("order", "dense"), default="order")
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
        i for i in load_qa_dataset(args.data_dir, "squad_v1.1_dev", split="dev") if any(c.is_gold for c in i.contexts)
    ]
    items = items[: args.limit]
    saved: dict[str, list[float]] = (
        json.loads(args.scores.read_text()) if args.scores is not None and args.scores.exists() else {}
    )
    embedder = model.embedder if args.first_stage == "dense" else None
    if args.first_stage == "dense" and embedder is None:
        parser.error("--first-stage dense needs the model's embedding model")
    started = time.monotonic()
    cases: list[dict[str, Any]] = []
    for item in items:
        texts = [context_text(c) for c in item.contexts]
        llm = saved.get(item.id) or model.score(item.question, texts)
        saved[item.id] = llm
        cosines = embedder.similarities(item.question, texts) if embedder is not None else None
        kept = ranked(model, item.question, texts, llm, cosines, list(range(len(texts))))
        others = [i for i, c in enumerate(item.contexts) if not c.is_gold]
        removed = ranked(model, item.question, texts, llm, cosines, others)
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

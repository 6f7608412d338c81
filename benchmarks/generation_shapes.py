"""Answers in the prompt shapes users write, through the real framework classes, per model.

Each question gets its gold passage(s) and distractors (SQuAD: the gold paragraph and two distractors; HotpotQA:
the two gold paragraphs and one distractor), shuffled with a fixed seed, and is answered four ways:

* ``rankrag``: RankRAG's own answer prompt (``RankRAGModel.generate``);
* ``llamaindex``: LlamaIndex's response synthesizer (what a query engine runs after retrieval) with its default
  templates, over ``TextNode`` s, on ``rankrag_llamaindex.RankRAGLLM``;
* ``langchain``: a LangChain system + human RAG prompt (LangChain's RAG tutorial) piped into
  ``rankrag_langchain.RankRAGLLM``;
* ``plain_unseen``: a plain user message in a wording no blend variant uses, to see whether a gain carries over.

Reported per shape: "answer contains a gold answer" (normalised, SQuAD-style), token F1, how often the answer says
the passages lack the answer, and how many answers ran to the token limit. ``--unanswerable N`` adds N dev SQuAD
questions over three distractors only (gold paragraph removed), where saying so is right. Models: ``base`` (no
adapter), ``shipped`` (the default roles: ranking adapter, answerer as its calibration records), ``ranker`` (the
shipped ranking adapter answering too), ``answerer=DIR`` (the shipped ranker, DIR answering) or ``adapter=DIR``
(DIR in both roles).

    python benchmarks/generation_shapes.py --data-dir DIR --models base,shipped,adapter=runs/x/adapter \
        --squad 30 --hotpot 20 --max-new-tokens 48 --output runs/eval/shapes.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from statistics import fmean
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import machine  # noqa: E402

SHAPES = ("rankrag", "llamaindex", "langchain", "plain_unseen")
LANGCHAIN_SYSTEM = (
    "You are an assistant for question-answering tasks. Use the following pieces of retrieved context to answer "
    "the question. If you don't know the answer, say that you don't know. Use three sentences maximum and keep the "
    "answer concise.\n\n{context}"
)
PLAIN_UNSEEN = "Use the text below to answer.\n{context}\n\nQ: {question}\nA:"
# General questions without passages (a plain chat turn): the answerer should keep what the base knew.
GENERAL = [
    ("What is the capital of France?", ["Paris"]),
    ("How many days are there in a week?", ["seven", "7"]),
    ("What is the largest planet in the solar system?", ["Jupiter"]),
    ("Who wrote Romeo and Juliet?", ["Shakespeare"]),
    ("What is the chemical symbol for water?", ["H2O"]),
    ("What color is the sky on a clear day?", ["blue"]),
    ("How many legs does a spider have?", ["eight", "8"]),
    ("What is the freezing point of water in degrees Celsius?", ["0", "zero"]),
]


def contains_gold(prediction: str, answers: list[str]) -> float:
    from rankrag.eval.metrics import normalize_answer

    text = normalize_answer(prediction)
    return float(any(normalize_answer(a) and normalize_answer(a) in text for a in answers))


def items_for(data_dir: str, name: str, count: int, distractors: int, gold: bool = True) -> list[dict[str, Any]]:
    """``count`` dev questions with their gold passage(s) and ``distractors`` others; ``gold=False``: the next
    ``count`` questions over ``distractors`` passages without the answer (their gold removed)."""
    from rankrag.data.datasets import load_qa_dataset
    from rankrag.eval.qa import context_text

    chosen = []
    items = load_qa_dataset(data_dir, name, split="dev")
    for item in items if gold else items[::-1]:  # unanswerable ones from the other end: no question in both
        golds = [context_text(c) for c in item.contexts if c.is_gold]
        others = [context_text(c) for c in item.contexts if not c.is_gold and not c.has_answer]
        if not golds or len(others) < distractors:
            continue
        passages = (golds if gold else []) + others[:distractors]
        random.Random(f"shapes:{item.id}").shuffle(passages)
        chosen.append({"id": item.id, "question": item.question, "answers": list(item.answers), "passages": passages})
        if len(chosen) == count:
            break
    return chosen


def load(spec: str) -> Any:
    from rankrag import RankRAGModel

    if spec == "base":
        return RankRAGModel.load(adapter=None)
    if spec == "shipped":
        return RankRAGModel.load()
    if spec == "ranker":
        return RankRAGModel.load(answerer_adapter=RankRAGModel.load().adapters["ranker"])
    if spec.startswith("answerer="):
        return RankRAGModel.load(answerer_adapter=spec.split("=", 1)[1])
    if spec.startswith("adapter="):
        return RankRAGModel.load(adapter=spec.split("=", 1)[1], answerer_adapter=spec.split("=", 1)[1])
    raise SystemExit(f"unknown model {spec!r}: use base, shipped, ranker, answerer=DIR or adapter=DIR")


def answerers(model: Any, max_new_tokens: int) -> dict[str, Any]:
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from llama_index.core import get_response_synthesizer
    from llama_index.core.schema import NodeWithScore, TextNode

    from rankrag_langchain import RankRAGLLM as LangChainLLM
    from rankrag_llamaindex import RankRAGLLM as LlamaIndexLLM

    chain_llm = LangChainLLM(model=model, max_tokens=max_new_tokens)
    prompt = ChatPromptTemplate.from_messages([("system", LANGCHAIN_SYSTEM), ("human", "{input}")])
    chain = prompt | chain_llm | StrOutputParser()
    synthesizer = get_response_synthesizer(llm=LlamaIndexLLM(model=model, max_new_tokens=max_new_tokens))

    def llamaindex(question: str, passages: list[str]) -> str:
        nodes = [NodeWithScore(node=TextNode(text=p), score=1.0) for p in passages]
        return str(synthesizer.synthesize(question, nodes=nodes))

    def plain(question: str, passages: list[str]) -> str:
        text = PLAIN_UNSEEN.format(context="\n\n".join(passages), question=question)
        return str(chain_llm.invoke(text).content)

    return {
        "rankrag": lambda q, ps: model.generate(q, ps, max_new_tokens=max_new_tokens),
        "llamaindex": llamaindex,
        "langchain": lambda q, ps: chain.invoke({"context": "\n\n".join(ps), "input": q}),
        "plain_unseen": plain,
        "general": lambda q: str(chain_llm.invoke(q).content),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=os.environ.get("RANKRAG_DATA_DIR"))
    parser.add_argument("--models", default="base,shipped")
    parser.add_argument("--squad", type=int, default=30)
    parser.add_argument("--hotpot", type=int, default=20)
    parser.add_argument("--unanswerable", type=int, default=0, help="dev SQuAD questions with the gold removed")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    sets = {
        "squad_v1.1_dev": items_for(args.data_dir, "squad_v1.1_dev", args.squad, 2),
        "hotpotqa_dev_distractor": items_for(args.data_dir, "hotpotqa_dev_distractor", args.hotpot, 1),
    }
    if args.unanswerable:
        sets["squad_v1.1_dev without gold"] = items_for(
            args.data_dir, "squad_v1.1_dev", args.unanswerable, 3, gold=False
        )
    report: dict[str, Any] = {"machine": machine(), "args": vars(args) | {"output": str(args.output)}, "results": {}}
    for spec in args.models.split(","):
        model = load(spec)
        ways = answerers(model, args.max_new_tokens)
        for shape in args.shapes.split(","):
            for name, items in sets.items():
                started = time.perf_counter()
                predictions = [ways[shape](item["question"], item["passages"]) for item in items]
                contains = fmean(contains_gold(p, i["answers"]) for p, i in zip(predictions, items))
                from rankrag.eval.metrics import f1_score, says_not_found

                f1 = fmean(f1_score(p, i["answers"]) for p, i in zip(predictions, items))
                declines = fmean(float(says_not_found(p)) for p in predictions)
                lengths = [len(model.tokenizer.encode(p, add_special_tokens=False)) for p in predictions]
                at_limit = sum(length >= args.max_new_tokens - 1 for length in lengths)
                row = {"contains": round(contains, 3), "f1": round(f1, 3), "n": len(items)}
                row |= {"declines": round(declines, 3), "at_token_limit": at_limit}
                row["seconds"] = round(time.perf_counter() - started, 1)
                row["examples"] = predictions[:3]
                report["results"].setdefault(spec, {}).setdefault(shape, {})[name] = row
                print(
                    f"{spec:>10} {shape:>13} {name:>28}: contains {contains:.3f} F1 {f1:.3f} declines {declines:.3f} "
                    f"at limit {at_limit}",
                    flush=True,
                )
        chat = ways["general"]
        general = [chat(question) for question, _ in GENERAL]
        right = fmean(contains_gold(p, answers) for p, (_, answers) in zip(general, GENERAL))
        report["results"][spec]["general"] = {"contains": round(right, 3), "n": len(GENERAL), "answers": general}
        print(f"{spec:>10} general questions: contains {right:.3f}", flush=True)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()

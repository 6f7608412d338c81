"""`rankrag index` + `rankrag ask` over SQuAD articles the model never trained on: how often the cited chunks
hold the gold paragraph, against the retriever's own top-k, in one run.

The articles are the dev-split SQuAD articles (no question of theirs is in the blend); each becomes one text
file of its paragraphs (those the shared set lists for the article's dev questions), indexed with the CLI's
defaults (1,000-character chunks, MiniLM embeddings, a local Chroma in a temporary directory). Each question
then goes through the code `rankrag ask` runs (`retrieve_and_rerank`, then greedy generation).

    python benchmarks/ask_unseen_articles.py --data-dir DATA --articles 5 --questions 20 --json FILE
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import _common

PREFIX_CHARS = 80


def holds(chunk: str, paragraph: str) -> bool:
    """Whether ``chunk`` carries ``paragraph``: one holds the other's opening (chunks cut long paragraphs)."""
    chunk, paragraph = " ".join(chunk.split()), " ".join(paragraph.split())
    return paragraph[:PREFIX_CHARS] in chunk or chunk[:PREFIX_CHARS] in paragraph


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--articles", type=int, default=5, help="first N dev-split articles by title")
    parser.add_argument("--questions", type=int, default=20, help="first N of their questions by id")
    parser.add_argument("--candidates", type=int, default=20)
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()

    from rankrag.cli.index import run_index
    from rankrag.data.datasets import load_qa_dataset
    from rankrag.eval.metrics import exact_match
    from rankrag.index import store
    from rankrag.index.search import retrieve_and_rerank
    from rankrag.model.rankrag_model import RankRAGModel

    data_dir = args.data_dir or _common.default_data_dir()
    items = load_qa_dataset(data_dir, "squad_v1.1_dev", split="dev")
    titles = sorted({item.group for item in items})[: args.articles]
    paragraphs: dict[str, dict[str, None]] = {title: {} for title in titles}
    for item in items:
        if item.group in paragraphs:
            for context in item.contexts:
                paragraphs[item.group][context.text] = None
    questions = sorted((item for item in items if item.group in paragraphs), key=lambda item: item.id)
    questions = questions[: args.questions]

    model = RankRAGModel.load()
    per_question: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "articles"
        folder.mkdir()
        for title, texts in paragraphs.items():
            (folder / f"{title}.txt").write_text("\n\n".join(texts), encoding="utf-8")
        db = Path(tmp) / "db"
        _, chunks = run_index([folder], db=db, show_progress=False)
        documents = store.open_for_reading(store.connect(db, None, create=False), "rankrag")
        for item in questions:
            gold = next(context.text for context in item.contexts if context.is_gold)
            found = documents.search(item.question, args.candidates)
            used = retrieve_and_rerank(model, documents, item.question, candidates=args.candidates, top_k=args.top_k)
            answer = model.generate(item.question, [p.text for p in used], max_new_tokens=32)
            per_question.append(
                {
                    "id": item.id,
                    "cited_gold": any(holds(p.text, gold) for p in used),
                    "retriever_top_k_gold": any(holds(r.text, gold) for r in found[: args.top_k]),
                    "candidates_gold": any(holds(r.text, gold) for r in found),
                    "em": exact_match(answer, item.answers),
                }
            )
            print(f"{item.id}: {per_question[-1]}", file=sys.stderr)

    def share(key: str) -> float:
        return sum(float(row[key]) for row in per_question) / len(per_question)

    result = {
        **_common.stamp(sys.argv),
        "machine": _common.machine(),
        "articles": titles,
        "chunks": chunks,
        "questions": len(per_question),
        "candidates": args.candidates,
        "top_k": args.top_k,
        "cited_gold": share("cited_gold"),
        "retriever_top_k_gold": share("retriever_top_k_gold"),
        "candidates_gold": share("candidates_gold"),
        "em": share("em"),
        "per_question": per_question,
    }
    print(
        f"{len(per_question)} questions over {len(titles)} unseen articles ({chunks} chunks): "
        f"gold paragraph cited {result['cited_gold']:.2f} (retriever's top-{args.top_k} {result['retriever_top_k_gold']:.2f}, "
        f"among the {args.candidates} candidates {result['candidates_gold']:.2f}); answer EM {result['em']:.2f}"
    )
    _common.write_json(result, args.json)


if __name__ == "__main__":
    main()

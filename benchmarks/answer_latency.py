"""How much reranking adds to a question's answer time, as the paper reports it (RankRAG §5.5).

The three parts of ``rankrag ask`` are timed on a real Chroma index (all-MiniLM-L6-v2 embeddings, in a
temporary directory) of every distinct passage in the TREC DL BM25 candidate lists (MS MARCO passages):

  t1     retrieval: Chroma returns the top 100 chunks for the question;
  N·t2   scoring the top N of them with RankRAG (N = 20, 50, 100; ``RankRAGModel.score``);
  t3     generation: the answer from the best 5 (greedy, at most ``--max-new-tokens``).

It prints N·t2 / (t1 + t3), the time reranking adds relative to retrieval plus generation, and the
end-to-end seconds per question t1 + N·t2 + t3. Medians over ``--questions`` TREC DL queries.
``--served-url`` also times the same questions on a served model (``RankRAGModel.connect``).

    python benchmarks/answer_latency.py [--quick] [--json FILE]
    python benchmarks/answer_latency.py --served-url http://127.0.0.1:8000 --served-model smollm2
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402

from rankrag import RankRAGModel  # noqa: E402

DEPTHS = (20, 50, 100)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 questions, 1,500 indexed passages (a smoke check)")
    parser.add_argument("--json", metavar="FILE", help="also write the result to FILE")
    parser.add_argument("--data-dir", default=None, help="shared data directory (default $RANKRAG_DATA_DIR)")
    parser.add_argument("--questions", type=int, default=None, help="questions timed (default 5; 2 with --quick)")
    parser.add_argument(
        "--max-passages", type=int, default=None, help="passages indexed (default all; 1,500 with --quick)"
    )
    parser.add_argument("--max-new-tokens", type=int, default=128, help="longest answer (rankrag ask's default)")
    parser.add_argument("--model", default=None, help="model source (default: the embedded SmolLM2 + shipped adapter)")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--served-url", default=None, help="also time a served model at this URL")
    parser.add_argument("--served-model", default="smollm2", help="its model name")
    args = parser.parse_args(argv)
    args.questions = args.questions or (2 if args.quick else 5)
    args.max_passages = args.max_passages or (1500 if args.quick else None)
    return args


def build_index(rows: list[dict[str, Any]], directory: str, limit: int | None) -> tuple[Any, float, int]:
    """A Chroma collection of the distinct candidate passages; returns (store, seconds to build, size)."""
    from rankrag.index import store
    from rankrag.index.chunk import Chunk

    texts = list(dict.fromkeys(c["text"] for row in rows for c in row["candidates"]))[:limit]
    chunks = [Chunk(id=f"p{i}", text=text, source="trec_dl_passage", chunk_index=i) for i, text in enumerate(texts)]
    started = time.perf_counter()
    documents = store.open_for_writing(store.connect(directory, None, create=True), "latency")
    documents.write(chunks)
    return documents, time.perf_counter() - started, len(chunks)


def time_questions(model: RankRAGModel, documents: Any, questions: list[str], max_new_tokens: int) -> dict[str, Any]:
    retrieval, generation, answer_tokens = [], [], []
    scoring: dict[int, list[float]] = {n: [] for n in DEPTHS}
    model.score(questions[0], ["warm-up passage"])  # first-call costs (kernels, allocator) are not a question's
    for question in questions:
        seconds, _, found = _common.timed(lambda: documents.search(question, max(DEPTHS)), "cpu")
        retrieval.append(seconds)
        texts = [r.text for r in found]
        for n in DEPTHS:
            seconds, _, scores = _common.timed(lambda: model.score(question, texts[:n]), "cpu")
            scoring[n].append(seconds)
        similarities = [r.similarity for r in found][: len(scores)]
        best = [
            p.text for p in model.rank_scored(texts[: len(scores)], scores, top_k=5, first_stage_scores=similarities)
        ]
        seconds, _, generated = _common.timed(
            lambda: model.generate_ids(model.answer_prompt_ids(question, best), max_new_tokens=max_new_tokens),
            "cpu",
        )
        generation.append(seconds)
        answer_tokens.append(generated.completion_tokens)
    t1, t3 = _common.median(retrieval), _common.median(generation)
    per_depth = {}
    for n in DEPTHS:
        t2n = _common.median(scoring[n])
        per_depth[str(n)] = {
            "scoring_s": round(t2n, 3),
            "added_time_ratio": round(t2n / (t1 + t3), 2),
            "end_to_end_s": round(t1 + t2n + t3, 3),
        }
    return {
        "retrieval_s": round(t1, 4),
        "generation_s": round(t3, 3),
        "answer_tokens_median": _common.median(answer_tokens),
        "by_n": per_depth,
        "times_s": {
            "retrieval": [round(t, 4) for t in retrieval],
            "generation": [round(t, 3) for t in generation],
            **{f"scoring_{n}": [round(t, 3) for t in scoring[n]] for n in DEPTHS},
        },
    }


def main(argv: Sequence[str]) -> dict[str, Any]:
    args = parse_args(argv)
    machine = _common.machine()
    data_dir = _common.default_data_dir() if args.data_dir is None else Path(args.data_dir)
    rows = _common.read_trec(data_dir)
    questions = [row["query"] for row in rows[: args.questions]]
    with tempfile.TemporaryDirectory(prefix="rankrag-latency-") as directory:
        documents, index_seconds, indexed = build_index(rows, directory, args.max_passages)
        model = RankRAGModel.load(args.model, dtype=args.dtype)
        result: dict[str, Any] = {
            "in_process": time_questions(model, documents, questions, args.max_new_tokens),
            "model": model.name,
            "dtype": str(model.model.dtype).removeprefix("torch."),
        }
        if args.served_url:
            served = RankRAGModel.connect(args.served_url, model=args.served_model)
            try:
                result["served"] = {
                    **time_questions(served, documents, questions, args.max_new_tokens),
                    "url": args.served_url,
                    "server": served.info.flavor,
                }
            finally:
                served.close()
    result.update(
        {
            "indexed_passages": indexed,
            "index_build_s": round(index_seconds, 1),
            "questions": questions,
            "note": "added_time_ratio = N*t2 / (t1 + t3); medians over the questions",
            "machine": {**machine, "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
            **_common.stamp(["benchmarks/answer_latency.py", *argv]),
        }
    )
    for label in ("in_process", "served"):
        if label in result:
            part = result[label]
            line = ", ".join(
                f"N={n}: {v['added_time_ratio']}x ({v['end_to_end_s']} s/question)" for n, v in part["by_n"].items()
            )
            print(f"{label}: t1 {part['retrieval_s']} s, t3 {part['generation_s']} s; {line}", file=sys.stderr)
    _common.write_json(result, args.json)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])

"""`make demo` fallback: rerank a few passages with the embedded model and answer (no index needed)."""

from __future__ import annotations

from rankrag import RankRAGModel

PASSAGES = [
    "Paris is the capital and most populous city of France.",
    "Tokyo is the capital of Japan and the seat of the Japanese government.",
    "Mount Fuji is the highest mountain in Japan, at 3,776 metres.",
    "The Great Barrier Reef lies off the coast of Queensland, Australia.",
]


def main() -> None:
    model = RankRAGModel.load()
    question = "What is the capital of Japan?"
    result = model.answer(question, PASSAGES, top_k=2)
    print(f"Q: {question}\nA: {result.answer}\n")
    for passage in result.contexts:
        print(f"  [{passage.score:.3f}] (retrieval rank {passage.index + 1}) {passage.text}")


if __name__ == "__main__":
    main()

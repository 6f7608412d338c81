"""Retrieve, then rerank: the passages of the index that a question is answered from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rankrag.index.store import DocumentStore
    from rankrag.model.rankrag_model import RankRAGModel


@dataclass(frozen=True)
class UsedPassage:
    """A chunk chosen to answer from, with its RankRAG score (the hybrid score of :meth:`RankRAGModel.rerank`) and
    its retrieval similarity."""

    text: str
    source: str
    score: float
    similarity: float

    def as_json(self) -> dict[str, object]:
        return {"text": self.text, "source": self.source, "score": self.score}


def retrieve_and_rerank(
    model: RankRAGModel,
    documents: DocumentStore,
    question: str,
    *,
    candidates: int,
    top_k: int,
    alpha: float | None = None,
) -> list[UsedPassage]:
    """Top-``candidates`` chunks from Chroma, reranked by RankRAG, best ``top_k``. Chroma's similarity is the dense
    first stage (the index's embedding model), so no embedding is computed again; with the model's cascade the
    LLM scores only the best of the candidates by that similarity."""
    found = documents.search(question, candidates)
    ranked = model.rerank(
        question,
        [r.text for r in found],
        top_k=top_k,
        first_stage_scores=[r.similarity for r in found],
        first_stage="dense",
        alpha=alpha,
    )
    return [UsedPassage(p.text, found[p.index].source, p.score, found[p.index].similarity) for p in ranked]

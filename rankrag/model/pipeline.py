"""The framework-free RankRAG pipeline: rerank retrieved passages, keep the top-k, answer."""

from __future__ import annotations

from collections.abc import Sequence

from rankrag.model.rankrag_model import RankRAGModel
from rankrag.model.results import RAGAnswer


def rankrag_answer(
    question: str,
    passages: Sequence[str],
    *,
    model: RankRAGModel | None = None,
    top_k: int = 5,
    **generation_options: object,
) -> RAGAnswer:
    """Score all ``passages`` for ``question``, keep ``top_k`` (default 5), generate the answer.

    Uses the shared embedded model when ``model`` is None.
    """
    return (model or RankRAGModel.load()).answer(question, passages, top_k=top_k, **generation_options)

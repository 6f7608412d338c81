"""The framework-free RankRAG pipeline: rerank retrieved passages, keep the top-k, answer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rankrag.defaults import NOT_FOUND_MESSAGE
from rankrag.model.generation import GenerationOptions
from rankrag.model.rankrag_model import RankRAGModel
from rankrag.model.results import RAGAnswer

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from rankrag.model.generation import GenerationOverrides


def rankrag_answer(
    question: str,
    passages: Sequence[str],
    *,
    model: RankRAGModel | None = None,
    top_k: int = 5,
    score_threshold: float | None = None,
    not_found_message: str = NOT_FOUND_MESSAGE,
    options: GenerationOptions | None = None,
    **overrides: Unpack[GenerationOverrides],
) -> RAGAnswer:
    """Score all ``passages`` for ``question``, keep ``top_k`` (default 5) that reach ``score_threshold``, generate
    the answer (or abstain: :meth:`RankRAGModel.answer`).

    Uses the shared embedded model when ``model`` is None.
    """
    return (model or RankRAGModel.load()).answer(
        question,
        passages,
        top_k=top_k,
        score_threshold=score_threshold,
        not_found_message=not_found_message,
        options=options,
        **overrides,
    )

"""What a framework reranker returns: every input ranked (blank ones last), then the threshold and the top-n cut.

The LangChain and LlamaIndex rerankers call :func:`select` / :func:`aselect` with plain texts and scores and
only translate documents or nodes to texts and back (``ScoredPassage.index`` is the input position).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from rankrag.model.passages import is_blank
from rankrag.model.results import ScoredPassage
from rankrag.model.validation import check_positive

if TYPE_CHECKING:
    from rankrag.model.rankrag_model import RankRAGModel


@dataclass(frozen=True)
class Selection:
    """``ranking``: every input, best first; blank inputs follow at score 0 in input order (they are not sent
    to the model). ``kept``: the ranking after ``score_threshold`` and ``top_n``."""

    ranking: list[ScoredPassage]
    kept: list[ScoredPassage]


@dataclass(frozen=True)
class _Request:
    texts: list[str]
    positions: list[int]
    first_stage_scores: list[float] | None

    @classmethod
    def of(cls, texts: Sequence[str], first_stage_scores: Sequence[float | None] | None) -> _Request:
        if first_stage_scores is not None and len(first_stage_scores) != len(texts):
            raise ValueError(
                f"first_stage_scores has {len(first_stage_scores)} values for {len(texts)} passages; give one per passage"
            )
        positions = [i for i, text in enumerate(texts) if not is_blank(text)]
        scores = None if first_stage_scores is None else [first_stage_scores[i] for i in positions]
        usable = (
            None if scores is None or any(s is None for s in scores) else [float(s) for s in scores if s is not None]
        )
        return cls([texts[i] for i in positions], positions, usable)


def _check(top_n: int | None, score_threshold: float | None) -> None:
    check_positive(top_n, "top_n")
    if score_threshold is not None and not isinstance(score_threshold, (int, float)):
        raise TypeError(f"score_threshold must be a number or None, got {type(score_threshold).__name__}")


def _finish(
    request: _Request, ranked: Sequence[ScoredPassage], total: int, top_n: int | None, score_threshold: float | None
) -> Selection:
    ranking = [replace(p, index=request.positions[p.index]) for p in ranked]
    sent = set(request.positions)
    ranking += [
        ScoredPassage(text="", score=0.0, index=i, metadata={"llm_score": 0.0}) for i in range(total) if i not in sent
    ]
    kept = [p for p in ranking if score_threshold is None or p.score >= score_threshold]
    return Selection(ranking=ranking, kept=kept[:top_n] if top_n is not None else kept)


def select(
    model: RankRAGModel,
    query: str,
    texts: Sequence[str],
    *,
    top_n: int | None = None,
    score_threshold: float | None = None,
    first_stage_scores: Sequence[float | None] | None = None,
    alpha: float | None = None,
    batch_size: int | None = None,
) -> Selection:
    """Rerank ``texts`` for ``query`` with ``model`` (see :meth:`RankRAGModel.rerank`) and cut the result.

    ``first_stage_scores`` (one per text, higher is better) is used when every non-blank text has one, else
    the input order is the retriever's signal.
    """
    _check(top_n, score_threshold)
    request = _Request.of(texts, first_stage_scores)
    ranked = (
        model.rerank(
            query, request.texts, batch_size=batch_size, first_stage_scores=request.first_stage_scores, alpha=alpha
        )
        if request.texts
        else []
    )
    return _finish(request, ranked, len(texts), top_n, score_threshold)


# Kept twin of select(): the same signature, awaiting arerank.
async def aselect(
    model: RankRAGModel,
    query: str,
    texts: Sequence[str],
    *,
    top_n: int | None = None,
    score_threshold: float | None = None,
    first_stage_scores: Sequence[float | None] | None = None,
    alpha: float | None = None,
    batch_size: int | None = None,
) -> Selection:
    """Async :func:`select`: scoring runs off the event loop (:meth:`RankRAGModel.arerank`)."""
    _check(top_n, score_threshold)
    request = _Request.of(texts, first_stage_scores)
    ranked = (
        await model.arerank(
            query, request.texts, batch_size=batch_size, first_stage_scores=request.first_stage_scores, alpha=alpha
        )
        if request.texts
        else []
    )
    return _finish(request, ranked, len(texts), top_n, score_threshold)

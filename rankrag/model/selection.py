"""What a framework reranker returns: every input ranked (blank ones last), then the threshold and the top-n cut.

The LangChain and LlamaIndex rerankers call :func:`select` / :func:`aselect` with plain texts and scores and
only translate documents or nodes to texts and back (``ScoredPassage.index`` is the input position).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from rankrag.model.passages import is_blank
from rankrag.model.ranking_plan import DENSE_SCORE, LLM_SCORE, RankingKeywords
from rankrag.model.results import ScoredPassage
from rankrag.model.validation import check_positive, check_threshold

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from rankrag.model.rankrag_model import RankRAGModel


@dataclass(frozen=True)
class Selection:
    """``ranking``: every input, best first; blank inputs follow at score 0 in input order (they are not sent
    to the model). ``kept``: the ranking after ``score_threshold`` and ``top_n``."""

    ranking: list[ScoredPassage]
    kept: list[ScoredPassage]


class SelectionKeywords(RankingKeywords, total=False):
    """The :meth:`RankRAGModel.rerank` keywords a selection passes on."""

    batch_size: int | None


@dataclass(frozen=True)
class _Request:
    texts: list[str]
    positions: list[int]
    first_stage_scores: list[float] | None
    total: int
    top_n: int | None
    score_threshold: float | None

    @classmethod
    def of(
        cls,
        texts: Sequence[str],
        first_stage_scores: Sequence[float | None] | None,
        top_n: int | None,
        score_threshold: float | None,
    ) -> _Request:
        check_positive(top_n, "top_n")
        check_threshold(score_threshold)
        if first_stage_scores is not None and len(first_stage_scores) != len(texts):
            raise ValueError(
                f"first_stage_scores has {len(first_stage_scores)} values for {len(texts)} passages; give one per passage"
            )
        positions = [i for i, text in enumerate(texts) if not is_blank(text)]
        scores = None if first_stage_scores is None else [first_stage_scores[i] for i in positions]
        usable = (
            None if scores is None or any(s is None for s in scores) else [float(s) for s in scores if s is not None]
        )
        return cls([texts[i] for i in positions], positions, usable, len(texts), top_n, score_threshold)

    def finish(self, ranked: Sequence[ScoredPassage]) -> Selection:
        ranking = [replace(p, index=self.positions[p.index]) for p in ranked]
        sent = set(self.positions)
        blank_metadata = {LLM_SCORE: 0.0, DENSE_SCORE: None}
        ranking += [
            ScoredPassage(text="", score=0.0, index=i, metadata=dict(blank_metadata))
            for i in range(self.total)
            if i not in sent
        ]
        kept = [p for p in ranking if self.score_threshold is None or p.score >= self.score_threshold]
        return Selection(ranking=ranking, kept=kept[: self.top_n] if self.top_n is not None else kept)


def select(
    model: RankRAGModel,
    query: str,
    texts: Sequence[str],
    *,
    top_n: int | None = None,
    score_threshold: float | None = None,
    first_stage_scores: Sequence[float | None] | None = None,
    **options: Unpack[SelectionKeywords],
) -> Selection:
    """Rerank ``texts`` for ``query`` with ``model`` (see :meth:`RankRAGModel.rerank`, which takes ``options``)
    and cut the result.

    ``first_stage_scores`` (one per text, higher is better) is used when every non-blank text has one; when
    some have none, the input order is the retriever's signal for all of them (and a dense first stage's
    similarity is computed by the model's embedding model).
    """
    request = _Request.of(texts, first_stage_scores, top_n, score_threshold)
    if not request.texts:
        return request.finish([])
    return request.finish(model.rerank(query, request.texts, first_stage_scores=request.first_stage_scores, **options))


# Kept twin: select() awaiting arerank; the shared steps live in _Request, only the awaited call differs.
async def aselect(
    model: RankRAGModel,
    query: str,
    texts: Sequence[str],
    *,
    top_n: int | None = None,
    score_threshold: float | None = None,
    first_stage_scores: Sequence[float | None] | None = None,
    **options: Unpack[SelectionKeywords],
) -> Selection:
    """Async :func:`select`: scoring runs off the event loop (:meth:`RankRAGModel.arerank`)."""
    request = _Request.of(texts, first_stage_scores, top_n, score_threshold)
    if not request.texts:
        return request.finish([])
    return request.finish(
        await model.arerank(query, request.texts, first_stage_scores=request.first_stage_scores, **options)
    )

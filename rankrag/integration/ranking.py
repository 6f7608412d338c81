"""Reranking for the framework components, under the blank-passage rule.

A blank passage (:func:`rankrag.model.passages.is_blank`) never takes a top-n slot, never reaches the
generator and is never sent to the model: :func:`select` / :func:`aselect` rank the other passages and leave
blank ones out of the result; :func:`score_pairs` gives a blank passage
:data:`~rankrag.model.passages.BLANK_PASSAGE_SCORE`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from rankrag.model.hybrid import FirstStageKind
from rankrag.model.passages import BLANK_PASSAGE_SCORE, is_blank
from rankrag.model.rankrag_model import RankRAGModel
from rankrag.model.selection import Selection
from rankrag.model.selection import aselect as core_aselect
from rankrag.model.selection import select as core_select
from rankrag.model.validation import check_passages, check_query


@dataclass(frozen=True)
class RerankSettings:
    """A reranker's settings, with the defaults both frameworks' rerankers declare."""

    top_n: int | None = 5
    """How many passages to keep, best first (RankRAG's k); None keeps all."""
    score_threshold: float | None = None
    """Drop passages whose ``relevance_score`` is below this value: by default the calibrated probability that the
    passage is relevant, so 0.5 keeps what is more likely relevant than not (with ``alpha`` set: the fused score)."""
    first_stage: FirstStageKind = "lexical"
    """What the retriever is: "lexical" (keyword scores such as BM25, or unknown) or "dense" (a vector retriever,
    whose scores are then the dense signal; see :meth:`RankRAGModel.rerank`)."""
    alpha: float | None = None
    """None: the calibrated relevance ranking with the model's coefficients. A number (0..1): the LLM score fused with the
    retriever's signal only, at that weight (1 is LLM only)."""
    batch_size: int | None = None
    """Passages scored per forward pass; None uses the model's default."""

    @classmethod
    def of(cls, component: Any) -> RerankSettings:
        """The settings a reranker holds, read from its attributes of the same names."""
        return cls(**{field.name: getattr(component, field.name) for field in fields(cls)})


RERANK_DEFAULTS = RerankSettings()


@dataclass(frozen=True)
class RerankRequest:
    """What to rerank: one text per input document, and the retriever's score of each (None where a document
    has none; the input order is then the retriever's signal), or None to use the input order."""

    query: str
    texts: Sequence[str]
    retrieval_scores: Sequence[float | None] | None = None


def _without_blanks(selection: Selection) -> Selection:
    ranking = [p for p in selection.ranking if not is_blank(p.text)]
    kept = [p for p in selection.kept if not is_blank(p.text)]
    return replace(selection, ranking=ranking, kept=kept)


def select(model: RankRAGModel, request: RerankRequest, settings: RerankSettings = RERANK_DEFAULTS) -> Selection:
    """The non-blank texts ranked for the query and cut by ``settings`` (``ScoredPassage.index`` is the position
    in ``request.texts``). :func:`rankrag.model.selection.select` ranks blank texts after all others, so leaving
    them out after the cut keeps the best of the rest."""
    scores, cut = request.retrieval_scores, asdict(settings)
    return _without_blanks(core_select(model, request.query, request.texts, first_stage_scores=scores, **cut))


async def aselect(model: RankRAGModel, request: RerankRequest, settings: RerankSettings = RERANK_DEFAULTS) -> Selection:
    """Async :func:`select`: scoring runs off the event loop."""
    scores, cut = request.retrieval_scores, asdict(settings)
    return _without_blanks(await core_aselect(model, request.query, request.texts, first_stage_scores=scores, **cut))


def score_pairs(model: RankRAGModel, pairs: Sequence[tuple[str, str]], batch_size: int | None = None) -> list[float]:
    """P("True") per (query, passage) pair, in input order. Each query's non-blank passages go through one
    :meth:`RankRAGModel.score` call, which encodes the query's prompt prefix once."""
    positions: dict[str, list[int]] = {}
    for index, (query, _) in enumerate(pairs):
        positions.setdefault(query, []).append(index)
    scores = [BLANK_PASSAGE_SCORE] * len(pairs)
    for query, indices in positions.items():
        check_query(query)
        passages = check_passages([pairs[i][1] for i in indices])
        scored = [(i, passage) for i, passage in zip(indices, passages) if not is_blank(passage)]
        if scored:
            values = model.score(query, [passage for _, passage in scored], batch_size=batch_size)
            for (i, _), value in zip(scored, values):
                scores[i] = value
    return scores

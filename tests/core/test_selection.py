"""rankrag.model.selection: the one place both framework rerankers get their ranking, threshold and cut from."""

from __future__ import annotations

import pytest

from rankrag import RankRAGModel
from rankrag.model.selection import aselect, select

QUERY = "who wrote hamlet"
TEXTS = ["Hamlet is a play by Shakespeare.", "   ", "Bananas are yellow.", "", "The Nile is long."]


def test_blank_texts_are_not_scored_and_come_last_in_input_order(tiny_model: RankRAGModel) -> None:
    chosen = select(tiny_model, QUERY, TEXTS, alpha=1.0)
    assert [p.index for p in chosen.ranking][-2:] == [1, 3]
    assert all(p.score == 0.0 and p.metadata["llm_score"] == 0.0 for p in chosen.ranking[-2:])
    scored = tiny_model.rerank(QUERY, [TEXTS[i] for i in (0, 2, 4)], alpha=1.0)
    assert [p.score for p in chosen.ranking[:3]] == [p.score for p in scored]
    assert [p.index for p in chosen.ranking[:3]] == [(0, 2, 4)[p.index] for p in scored]
    assert chosen.kept == chosen.ranking


def test_threshold_then_top_n(tiny_model: RankRAGModel) -> None:
    everything = select(tiny_model, QUERY, TEXTS, alpha=1.0).ranking
    threshold = everything[1].score
    chosen = select(tiny_model, QUERY, TEXTS, alpha=1.0, score_threshold=threshold, top_n=1)
    assert chosen.ranking == everything
    assert chosen.kept == everything[:1]
    assert [p.index for p in select(tiny_model, QUERY, TEXTS, alpha=1.0, score_threshold=threshold).kept] == [
        p.index for p in everything if p.score >= threshold
    ]


def test_first_stage_scores_are_used_only_when_every_scored_text_has_one(tiny_model: RankRAGModel) -> None:
    scores = [1.0, None, 3.0, None, 2.0]  # the blanks need none
    with_scores = select(tiny_model, QUERY, TEXTS, alpha=0.0, first_stage_scores=scores)
    assert [p.index for p in with_scores.ranking[:3]] == [2, 4, 0]
    partial = select(tiny_model, QUERY, TEXTS, alpha=0.0, first_stage_scores=[1.0, None, None, None, 2.0])
    assert [p.index for p in partial.ranking[:3]] == [0, 2, 4]  # input order
    with pytest.raises(ValueError, match="one per passage"):
        select(tiny_model, QUERY, TEXTS, first_stage_scores=[1.0])


def test_nothing_to_score(tiny_model: RankRAGModel) -> None:
    assert select(tiny_model, QUERY, []).ranking == []
    assert [p.index for p in select(tiny_model, QUERY, ["", " "]).kept] == [0, 1]


def test_bad_cut_options_are_named(tiny_model: RankRAGModel) -> None:
    with pytest.raises(ValueError, match="top_n"):
        select(tiny_model, QUERY, TEXTS, top_n=0)
    with pytest.raises(TypeError, match="score_threshold"):
        select(tiny_model, QUERY, TEXTS, score_threshold="high")  # type: ignore[arg-type]


async def test_async_selection_equals_sync(tiny_model: RankRAGModel) -> None:
    assert await aselect(tiny_model, QUERY, TEXTS, top_n=2) == select(tiny_model, QUERY, TEXTS, top_n=2)

"""Concurrent async scoring shares forward passes and returns what sequential calls return (float32)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest

from rankrag.model import coalescer as batching
from rankrag.model.coalescer import ScoreCoalescer, ScoreRequest


async def test_sixteen_concurrent_queries_share_rounds_and_match_sequential(
    short_prompt_model, squad_questions, squad_passages
) -> None:
    queries = squad_questions[:16]
    passage_sets = [squad_passages[i % 8 : i % 8 + 1 + i % 2] for i in range(16)]  # 1 or 2 passages
    sequential = [short_prompt_model.score(q, ps) for q, ps in zip(queries, passage_sets)]

    coalescer = batching.coalescer_for(short_prompt_model.model)
    rounds_before = coalescer.rounds
    concurrent = await asyncio.gather(*(short_prompt_model.ascore(q, ps) for q, ps in zip(queries, passage_sets)))
    rounds = coalescer.rounds - rounds_before

    assert rounds < len(queries), "concurrent calls ran one forward round each instead of sharing them"
    for got, expected in zip(concurrent, sequential):
        assert got == pytest.approx(expected, abs=1e-5)


async def test_arerank_orders_and_fuses_like_rerank(short_prompt_model, squad_questions, squad_passages) -> None:
    passages = squad_passages[:4]
    kwargs = {"top_k": 3, "first_stage_scores": [4.0, 3.0, 2.0, 1.0], "alpha": 0.7}
    expected = short_prompt_model.rerank(squad_questions[0], passages, **kwargs)
    got = await short_prompt_model.arerank(squad_questions[0], passages, **kwargs)
    assert [p.index for p in got] == [p.index for p in expected]
    assert [p.score for p in got] == pytest.approx([p.score for p in expected], abs=1e-5)
    assert [p.metadata["llm_score"] for p in got] == pytest.approx(
        [p.metadata["llm_score"] for p in expected], abs=1e-5
    )


async def test_async_input_errors_match_the_sync_ones(short_prompt_model) -> None:
    with pytest.raises(ValueError, match="query is empty"):
        await short_prompt_model.ascore("  ", ["a passage"])
    with pytest.raises(TypeError, match="passages must be a list of strings"):
        await short_prompt_model.arerank("a question", "one string")
    with pytest.raises(ValueError, match="top_k must be a positive integer"):
        await short_prompt_model.arerank("a question", ["a passage"], top_k=0)
    with pytest.raises(TypeError):
        await short_prompt_model.ascore("a question", ["a passage"], unknown_option=1)
    assert await short_prompt_model.ascore("a question", []) == []


def make_request(handle, question: str, passages: list[str], **changes: object) -> ScoreRequest:  # type: ignore[no-untyped-def]
    options = replace(handle.scoring_options, **changes)
    return handle.backend.score_request(handle._ranking_request(question, passages, options))


def test_a_failing_group_fails_only_its_own_callers(short_prompt_model, squad_questions, squad_passages) -> None:
    coalescer = ScoreCoalescer(max_wait_s=0.5)
    good = make_request(short_prompt_model, squad_questions[1], squad_passages[:2])
    bad = make_request(short_prompt_model, squad_questions[2], squad_passages[:1], normalization="nonsense")
    good_future, bad_future = coalescer.submit(good), coalescer.submit(bad)
    expected = short_prompt_model.score(squad_questions[1], squad_passages[:2])
    assert good_future.result(timeout=300) == pytest.approx(expected, abs=1e-5)
    with pytest.raises(ValueError, match="unknown normalization"):
        bad_future.result(timeout=300)
    assert coalescer.rounds == 1


def test_idle_worker_exits_and_a_new_request_restarts_it(short_prompt_model, squad_questions, squad_passages) -> None:
    coalescer = ScoreCoalescer(idle_exit_s=0.05)
    request = make_request(short_prompt_model, squad_questions[3], squad_passages[6:7])
    first = coalescer.submit(request).result(timeout=300)
    deadline = time.monotonic() + 30
    while coalescer._worker is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert coalescer._worker is None
    assert coalescer.submit(request).result(timeout=300) == pytest.approx(first, abs=1e-6)


async def test_coalescing_can_be_switched_off(short_prompt_model, squad_questions, squad_passages) -> None:
    options = replace(short_prompt_model.scoring_options, coalesce=False)
    handle = short_prompt_model.with_options(scoring_options=options)
    coalescer = batching.coalescer_for(short_prompt_model.model)
    rounds_before = coalescer.rounds
    got = await handle.ascore(squad_questions[4], squad_passages[6:8])
    assert coalescer.rounds == rounds_before
    assert got == pytest.approx(short_prompt_model.score(squad_questions[4], squad_passages[6:8]), abs=1e-5)

"""The deterministic mode (docs/reliability.md): float32, fixed order, ties broken by original rank.

In float32 a passage's score does not depend on the batch it is scored in beyond float rounding (1e-5 here;
the measured gap is ~1e-7); the same call is bit-identical when repeated, made from 64 threads at once
(test_concurrency.py) or made in a fresh process (test_offline_and_safe_loading.py). Duplicates tie exactly
and keep their input order.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
import torch
from reliability_budget import time_limit

from rankrag import RankRAGModel
from rankrag.model.forward_scoring import last_hidden_states, true_probabilities

pytestmark = pytest.mark.timeout(time_limit(300))

BATCH_SIZES = (1, 4, 16, 64)


@pytest.fixture(scope="module")
def question(squad_questions) -> str:  # type: ignore[no-untyped-def]
    return str(squad_questions[0]["question"])


@pytest.fixture(scope="module")
def passages(squad_passages) -> list[str]:  # type: ignore[no-untyped-def]
    """17 real passages cut at different lengths, so batches need padding; batch sizes 1, 4, 16 and 64 then
    score them in 17, 5, 2 and 1 batches."""
    return [row["text"][: 30 + 9 * i] for i, row in enumerate(squad_passages[:17])]


@pytest.fixture(scope="module")
def scores_by_batch_size(model: RankRAGModel, question: str, passages: list[str]) -> dict[int, list[float]]:
    return {size: model.score(question, passages, batch_size=size) for size in BATCH_SIZES}


def test_scores_agree_across_batch_sizes(scores_by_batch_size: dict[int, list[float]]) -> None:
    alone = scores_by_batch_size[1]
    assert max(alone) - min(alone) > 0.01, "passages must score differently for this test to mean anything"
    for size, scores in scores_by_batch_size.items():
        assert scores == pytest.approx(alone, abs=1e-5), f"batch_size={size}"


def test_rankings_agree_across_batch_sizes(
    model: RankRAGModel, question: str, passages: list[str], scores_by_batch_size: dict[int, list[float]]
) -> None:
    alone = scores_by_batch_size[1]
    ordered = sorted(alone)
    assert min(b - a for a, b in zip(ordered, ordered[1:])) > 1e-5, "no near-ties, so the order is well defined"
    one_at_a_time = sorted(range(len(alone)), key=lambda i: (-alone[i], i))
    # alpha=1: the LLM's own order (the default fuses with the input order, a different ranking).
    assert [item.index for item in model.rerank(question, passages, batch_size=64, alpha=1.0)] == one_at_a_time


def test_ties_are_broken_by_original_rank(model: RankRAGModel, question: str, passages: list[str]) -> None:
    a, b, c = passages[0], passages[1], passages[2]
    ranked = model.rerank(question, [a, b, a, c, b, a], batch_size=2, alpha=1.0)  # LLM scores alone
    for text in (a, b):
        same = [item for item in ranked if item.text == text]
        assert len({item.score for item in same}) == 1
        assert [item.index for item in same] == sorted(item.index for item in same)
    # Retriever-only fusion (alpha=0): equal first-stage scores all tie, so the input order is kept.
    tied = model.rerank(question, [c, b, a], first_stage_scores=[0.5, 0.5, 0.5], alpha=0.0)
    assert [item.index for item in tied] == [0, 1, 2]


async def test_async_calls_without_coalescing_are_bit_identical(
    model: RankRAGModel, question: str, passages: list[str]
) -> None:
    """The deterministic async mode: ScoringOptions(coalesce=False) scores each call on its own."""
    handle = model.with_options(scoring_options=replace(model.scoring_options, coalesce=False))
    calls = [passages[i : i + 2] for i in range(0, 8, 2)]
    concurrent = await asyncio.gather(*(handle.ascore(question, chunk) for chunk in calls))
    assert concurrent == [model.score(question, chunk) for chunk in calls]


def test_true_and_false_rows_are_scored_in_float32_for_a_bfloat16_model(tiny_llama, tokenizer) -> None:  # type: ignore[no-untyped-def]
    """P(True) comes from the two answer rows in float32 even when the model runs in bfloat16."""
    import copy

    half = copy.deepcopy(tiny_llama).to(torch.bfloat16)
    ids = [tokenizer.encode("Passage: rivers. Is it relevant? Answer:")] * 2
    hidden = last_hidden_states(half, ids, pad_id=int(tokenizer.pad_token_id or 0))
    assert hidden.dtype == torch.bfloat16
    probabilities = true_probabilities(half, hidden, 5, 7, "binary")
    assert probabilities.dtype == torch.float32
    head = half.get_output_embeddings().weight[[5, 7]].float()
    expected = torch.softmax(hidden.float() @ head.T, dim=-1)[:, 0]
    assert torch.equal(probabilities, expected)

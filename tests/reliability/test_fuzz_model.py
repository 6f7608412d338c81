"""Fuzzing the core entry points on the embedded model: score, rerank, generate, stream, answer, rankrag_answer.

Every example either returns a well-formed result or raises a documented exception (TypeError, ValueError or a
rankrag.errors class); pytest-timeout turns a hang into a failure.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from fuzz_strategies import any_text, blank_text, long_text, nonblank_text
from hypothesis import given
from hypothesis import strategies as st
from reliability_budget import fuzz_settings, long_profile, time_limit

from rankrag import PromptTooLongError, RAGAnswer, RankRAGError, rankrag_answer
from rankrag.defaults import NOT_FOUND_MESSAGE
from rankrag.model.ranking_prompts import RankingEncoder

pytestmark = pytest.mark.timeout(time_limit(600))

DOCUMENTED_ERRORS = (TypeError, ValueError, RankRAGError)
# Mostly short passages, now and then a long one (the 100k-character cases are the explicit tests below);
# duplicates come from sampling the drawn list again.
passage_text = st.one_of(any_text, blank_text, any_text, any_text, long_text(1_000))
passage_lists = st.lists(passage_text, min_size=0, max_size=4).flatmap(
    lambda items: (
        st.just(items) | st.lists(st.sampled_from(items), min_size=len(items), max_size=len(items) + 2)
        if items
        else st.just(items)
    )
)


def assert_probabilities(scores: list[float], count: int) -> None:
    assert len(scores) == count
    assert all(isinstance(s, float) and math.isfinite(s) and 0.0 <= s <= 1.0 for s in scores)


@fuzz_settings("model")
@given(query=st.one_of(nonblank_text, blank_text), passages=passage_lists)
def test_score_gives_one_probability_per_passage(model, query: str, passages: list[str]) -> None:
    if not query.strip():
        with pytest.raises(ValueError, match="empty or only whitespace"):
            model.score(query, passages)
        return
    scores = model.score(query, passages, batch_size=4)
    assert_probabilities(scores, len(passages))
    by_text: dict[str, float] = {}
    for passage, score in zip(passages, scores):  # a duplicate passage scores the same
        assert by_text.setdefault(passage, score) == pytest.approx(score, abs=1e-5)


@fuzz_settings("model")
@given(
    query=nonblank_text,
    passages=passage_lists,
    top_k=st.one_of(st.none(), st.integers(-1, 6)),
    first_stage=st.one_of(st.none(), st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=6)),
    alpha=st.one_of(st.none(), st.floats(-0.5, 1.5), st.just(float("nan"))),
)
def test_rerank_is_a_sorted_selection_or_a_clear_error(
    model, query: str, passages: list[str], top_k: int | None, first_stage: list[float] | None, alpha: float | None
) -> None:
    try:
        ranked = model.rerank(query, passages, top_k=top_k, first_stage_scores=first_stage, alpha=alpha, batch_size=4)
    except DOCUMENTED_ERRORS as error:
        invalid_top_k = top_k is not None and top_k < 1
        invalid_first = first_stage is not None and (
            len(first_stage) != len(passages) or not all(math.isfinite(s) for s in first_stage)
        )
        invalid_alpha = alpha is not None and not 0.0 <= alpha <= 1.0
        assert isinstance(error, ValueError) and str(error)
        assert invalid_top_k or invalid_first or invalid_alpha, f"unexpected {error!r}"
        return
    expected = len(passages) if top_k is None else min(top_k, len(passages))
    assert len(ranked) == expected
    assert len({item.index for item in ranked}) == expected
    for item in ranked:
        assert item.text == passages[item.index]
        assert 0.0 <= item.metadata["llm_score"] <= 1.0 and 0.0 <= item.score <= 1.0
    keys = [(-item.score, item.index) for item in ranked]
    assert keys == sorted(keys), "best first, ties in input order"


@fuzz_settings("generate")
@given(
    question=st.one_of(nonblank_text, blank_text),
    contexts=st.lists(st.one_of(any_text, blank_text, long_text(1_000)), max_size=3),
    max_new_tokens=st.integers(2, 4),
    stop=st.one_of(st.none(), st.sampled_from(["\n", ".", " the"]), st.lists(nonblank_text, max_size=2)),
)
def test_generate_and_stream_give_the_same_text(
    model, question: str, contexts: list[str], max_new_tokens: int, stop: Any
) -> None:
    options = {"max_new_tokens": max_new_tokens, "stop": stop}
    if not question.strip():
        with pytest.raises(ValueError, match="question is empty"):
            model.generate(question, contexts, **options)
        with pytest.raises(ValueError, match="question is empty"):
            model.stream(question, contexts, **options)
        return
    text = model.generate(question, contexts, **options)
    chunks = list(model.stream(question, contexts, **options))
    assert isinstance(text, str) and all(isinstance(c, str) and c for c in chunks)
    assert "".join(chunks) == text, "greedy streaming and generation must agree"


@fuzz_settings("generate")
@given(
    question=nonblank_text, passages=st.lists(any_text, max_size=3), top_k=st.integers(1, 3), use_helper=st.booleans()
)
def test_answer_pipeline(model, question: str, passages: list[str], top_k: int, use_helper: bool) -> None:
    if use_helper:
        result = rankrag_answer(question, passages, model=model, top_k=top_k, max_new_tokens=2)
    else:
        result = model.answer(question, passages, top_k=top_k, max_new_tokens=2)
    assert isinstance(result, RAGAnswer) and isinstance(result.answer, str)
    assert len(result.contexts) == min(top_k, len(passages))
    if not result.contexts:  # nothing to answer from: the not-found message, nothing generated
        assert result.abstained and result.answer == NOT_FOUND_MESSAGE


# ----------------------------------------------------------------------------------- explicit edge cases
def test_a_100k_character_passage_is_scored_within_the_token_budget(model) -> None:
    passage = ("Shakespeare wrote Hamlet around 1600. \u202e\u05e9\U0001f600\x00 " * 3000)[:100_000]
    encoded = model.encode_ranking("Who wrote Hamlet?", [passage])
    prefix, suffix = RankingEncoder(model.tokenizer, model.templates, model.scoring_options).prefix_and_suffix(
        "Who wrote Hamlet?"
    )
    assert len(encoded[0]) == len(prefix) + len(suffix) + model.scoring_options.max_passage_tokens
    assert_probabilities(model.score("Who wrote Hamlet?", [passage, "Paris is in France."]), 2)


def test_1000_passages_of_100k_characters_stay_bounded(model) -> None:
    """Truncation bounds the work: the tokenizer sees a prefix of each passage, every prompt fits the budget.

    The ci profile checks the encoding of all 1,000 (the test above scores a truncated 100k passage); the
    long profile also scores all of them."""
    passages = [(f"passage {i} " + "lorem ipsum dolor sit amet " * 4000)[:100_000] for i in range(1000)]
    encoded = model.encode_ranking("what is lorem ipsum?", passages)
    bound = max(len(ids) for ids in model.encode_ranking("what is lorem ipsum?", ["x"])) + 384
    assert len(encoded) == 1000 and all(len(ids) <= bound for ids in encoded)
    if long_profile():
        assert_probabilities(model.score("what is lorem ipsum?", passages, batch_size=16), len(passages))


def test_1000_passages_with_duplicates_rank_in_a_stable_order(model) -> None:
    """1,000 passages: one score each, and duplicates tie exactly and keep their input order.

    The ci profile draws them from 10 distinct texts (each is scored once); the long profile makes 500 distinct."""
    distinct = 500 if long_profile() else 10
    topics = ["Hamlet is a play by Shakespeare.", "Paris is in France. \U0001f600"]
    texts = [f"{i}: {topics[i % 2]}" for i in range(distinct)]
    passages = [texts[(i * 7) % distinct] for i in range(1000)]
    ranked = model.rerank("Who wrote Hamlet?", passages, batch_size=64, alpha=1.0)  # LLM scores alone
    assert sorted(item.index for item in ranked) == list(range(1000))
    assert all(item.text == passages[item.index] for item in ranked)
    keys = [(-item.score, item.index) for item in ranked]
    assert keys == sorted(keys)
    scores_of: dict[str, set[float]] = {}
    for item in ranked:
        scores_of.setdefault(item.text, set()).add(item.score)
    assert all(len(scores) == 1 for scores in scores_of.values()), "duplicates must score identically"


def test_generation_past_the_context_window_is_refused_up_front(model) -> None:
    contexts = [f"context {i}: " + "word " * 500 for i in range(40)]  # 40 x 384 tokens > 8192
    with pytest.raises(PromptTooLongError, match="context window"):
        model.generate("What is this about?", contexts, max_new_tokens=2)
    with pytest.raises(PromptTooLongError, match="context window"):
        next(iter(model.stream("What is this about?", contexts, max_new_tokens=2)))
    with pytest.raises(PromptTooLongError, match="max_new_tokens"):
        model.generate("What is this about?", ["short"], max_new_tokens=10**9)
    with pytest.raises(ValueError, match="prompt_ids is empty"):
        model.generate_ids([], max_new_tokens=2)
    with pytest.raises(ValueError, match="token ids"):
        model.generate_ids([1, 2, 10**9], max_new_tokens=2)

"""Cheap properties (no forward pass): input checks, prompt tokenisation and truncation, fusion, stop handling.

These run thousands of cases in the long profile; every case either succeeds with a well-formed result or
raises one of the documented exceptions (TypeError, ValueError or a rankrag.errors class).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from fuzz_strategies import any_text, awkward_text, blank_text, long_text, nonblank_text
from hypothesis import given
from hypothesis import strategies as st
from reliability_budget import fuzz_settings, time_limit

from rankrag import GenerationOptions, ScoringOptions
from rankrag.model.fusion import fuse, normalized_first_stage
from rankrag.model.generation import _StopFilter, cut_at_stop
from rankrag.model.prompts import PromptTemplates, ranking_parts, render_ranking_prompt, render_turn
from rankrag.model.ranking_prompts import RankingEncoder
from rankrag.model.validation import check_passages, check_positive, check_query

pytestmark = pytest.mark.timeout(time_limit(300))

NOT_STRINGS = st.one_of(
    st.none(),
    st.integers(),
    st.floats(allow_nan=True),
    st.binary(max_size=8),
    st.booleans(),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.lists(st.integers(), max_size=2),
)


@fuzz_settings("cheap")
@given(query=st.one_of(any_text, blank_text, NOT_STRINGS))
def test_check_query_accepts_text_and_names_the_problem_otherwise(query: Any) -> None:
    if not isinstance(query, str):
        with pytest.raises(TypeError, match="query must be a string"):
            check_query(query)
    elif not query.strip():
        with pytest.raises(ValueError, match="empty or only whitespace"):
            check_query(query)
    else:
        assert check_query(query) is query


@fuzz_settings("cheap")
@given(passages=st.one_of(any_text, NOT_STRINGS, st.lists(st.one_of(any_text, blank_text, NOT_STRINGS), max_size=8)))
def test_check_passages_accepts_iterables_of_text_only(passages: Any) -> None:
    iterable = not isinstance(passages, (str, int, float, bool, type(None)))
    if iterable and all(isinstance(p, str) for p in passages):
        assert check_passages(passages) == list(passages)
        assert check_passages(iter(passages)) == list(passages)  # any iterable of strings, generators too
        return
    with pytest.raises(TypeError, match="passages"):
        check_passages(passages)


@fuzz_settings("cheap")
@given(value=st.one_of(st.integers(-5, 5), st.booleans(), st.floats(), st.none(), st.text(max_size=2)))
def test_check_positive(value: Any) -> None:
    valid = value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1)
    if valid:
        check_positive(value, "top_k")
    else:
        with pytest.raises(ValueError, match="top_k must be a positive integer"):
            check_positive(value, "top_k")


@fuzz_settings("cheap")
@given(
    question=nonblank_text,
    passages=st.lists(st.one_of(any_text, blank_text, long_text()), min_size=1, max_size=4),
    max_passage_tokens=st.integers(1, 512),
    question_first=st.booleans(),
)
def test_ranking_prompts_keep_instruction_and_cut_inside_the_passage(
    tokenizer, question: str, passages: list[str], max_passage_tokens: int, question_first: bool
) -> None:
    templates = PromptTemplates(question_first=question_first)
    encoder = RankingEncoder(tokenizer, templates, ScoringOptions(max_passage_tokens=max_passage_tokens))
    prefix, suffix = encoder.prefix_and_suffix(question)
    encoded = encoder.encode(question, passages)
    assert len(encoded) == len(passages)
    for ids in encoded:
        assert ids[: len(prefix)] == prefix
        assert ids[len(ids) - len(suffix) :] == suffix
        assert len(ids) <= len(prefix) + len(suffix) + max_passage_tokens
    # The rendered text holds the passage verbatim between the two halves of the prompt.
    parts = ranking_parts(tokenizer, templates, question)
    short = passages[0][:200]
    assert render_ranking_prompt(tokenizer, templates, question, short) == parts.prefix + short + parts.suffix


@fuzz_settings("cheap")
@given(question=st.one_of(nonblank_text, long_text(20_000)), max_length=st.integers(1, 2048))
def test_a_question_too_long_for_the_budget_is_a_clear_value_error(tokenizer, question: str, max_length: int) -> None:
    encoder = RankingEncoder(tokenizer, PromptTemplates(), ScoringOptions(max_length=max_length))
    prefix, suffix = encoder.prefix_and_suffix(question)
    if len(prefix) + len(suffix) < max_length:
        assert 1 <= encoder.passage_budget(prefix, suffix) <= 384
    else:
        with pytest.raises(ValueError, match="shorten the question"):
            encoder.passage_budget(prefix, suffix)


@fuzz_settings("cheap")
@given(question=nonblank_text, contexts=st.lists(st.one_of(any_text, blank_text, long_text(20_000)), max_size=3))
def test_generation_prompt_tokenises_any_text_with_bounded_contexts(model, question: str, contexts: list[str]) -> None:
    ids = model.answer_prompt_ids(question, contexts, max_context_tokens=64)
    empty = model.answer_prompt_ids(question, [""] * len(contexts), max_context_tokens=64)
    assert all(isinstance(i, int) and 0 <= i < len(model.tokenizer) for i in ids)
    # Each context adds at most its 64-token cut (plus a few tokens where the cut re-tokenises differently).
    assert len(ids) <= len(empty) + len(contexts) * (64 + 8)


@fuzz_settings("cheap")
@given(
    messages=st.lists(
        st.fixed_dictionaries(
            {"role": st.sampled_from(["system", "user", "assistant"]), "content": st.one_of(any_text, blank_text)}
        ),
        min_size=1,
        max_size=4,
    )
)
def test_chat_messages_tokenise_for_the_llm_wrappers(model, messages: list[dict[str, str]]) -> None:
    ids = model.messages_prompt_ids(messages)
    assert ids and all(isinstance(i, int) for i in ids)


finite_or_not = st.floats(allow_nan=True, allow_infinity=True)


@fuzz_settings("cheap")
@given(scores=st.one_of(st.none(), st.lists(finite_or_not, max_size=12)), n=st.integers(0, 12))
def test_first_stage_normalisation_is_on_the_unit_interval_or_a_clear_error(scores: list[float] | None, n: int) -> None:
    if scores is not None:
        n = len(scores) if n % 3 else n  # mostly matching lengths, sometimes a mismatch
    if scores is not None and len(scores) != n:
        with pytest.raises(ValueError, match="first-stage scores"):
            normalized_first_stage(n, scores)
        return
    if scores is not None and not all(math.isfinite(s) for s in scores):
        with pytest.raises(ValueError, match="finite"):
            normalized_first_stage(n, scores)
        return
    normalized = normalized_first_stage(n, scores)
    assert len(normalized) == n
    assert all(0.0 <= value <= 1.0 for value in normalized)
    if scores is not None:  # higher first-stage score never maps lower
        for (a, na), (b, nb) in zip(zip(scores, normalized), zip(scores[1:], normalized[1:])):
            assert (a <= b) == (na <= nb) or na == nb


@fuzz_settings("cheap")
@given(
    llm=st.lists(st.floats(0, 1), min_size=1, max_size=8),
    alpha=st.one_of(st.floats(0, 1), st.floats(allow_nan=True, allow_infinity=True)),
)
def test_fusion_weights_are_checked_and_stay_between_the_two_signals(llm: list[float], alpha: float) -> None:
    first = normalized_first_stage(len(llm))
    if not 0.0 <= alpha <= 1.0:
        with pytest.raises(ValueError, match="alpha must be between 0"):
            fuse(llm, first, alpha)
        return
    for fused, a, b in zip(fuse(llm, first, alpha), llm, first):
        assert min(a, b) - 1e-12 <= fused <= max(a, b) + 1e-12


@fuzz_settings("cheap")
@given(
    max_new_tokens=st.one_of(st.integers(-3, 10**6), st.floats(allow_nan=True), st.text(max_size=2), st.none()),
    temperature=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-2, 3)),
    top_p=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-1, 2)),
    stop=st.one_of(st.none(), any_text, st.lists(st.one_of(any_text, st.integers()), max_size=3)),
    seed=st.one_of(st.none(), st.integers(-(2**70), 2**70), st.text(max_size=2)),
)
def test_generation_options_are_validated_up_front(model, max_new_tokens, temperature, top_p, stop, seed) -> None:
    try:
        options = model._generation_options(
            max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, stop=stop, seed=seed
        )
    except (TypeError, ValueError) as error:
        assert str(error)  # the message names the problem
        return
    assert isinstance(options, GenerationOptions)
    assert isinstance(options.max_new_tokens, int) and options.max_new_tokens >= 1
    assert options.temperature >= 0 and 0 < options.top_p <= 1
    assert all(isinstance(s, str) and s for s in options.stop)
    if isinstance(stop, str) and stop:
        assert options.stop == (stop,), "a single stop string is one stop sequence, not one per character"


@fuzz_settings("cheap")
@given(
    text=st.one_of(any_text, awkward_text),
    stops=st.lists(st.one_of(awkward_text, st.text(max_size=4)).filter(bool), max_size=3),
    cuts=st.lists(st.integers(0, 200), max_size=12),
)
def test_streamed_stop_filtering_equals_cutting_the_whole_text(text: str, stops: list[str], cuts: list[int]) -> None:
    bounds = sorted({min(c, len(text)) for c in cuts} | {0, len(text)})
    chunks = [text[a:b] for a, b in zip(bounds, bounds[1:])]
    stop_filter = _StopFilter(stops)
    out = ""
    for chunk in chunks:
        if stop_filter.done:
            break
        out += stop_filter.feed(chunk)
    if not stop_filter.done:
        out += stop_filter.flush()
    assert out == cut_at_stop(text, stops)[0]


def test_surrogates_are_a_clear_value_error(model) -> None:
    """Lone surrogates (text that is not valid unicode) are refused by the input checks, not by the tokenizer."""
    with pytest.raises(ValueError, match="query is not valid unicode"):
        model.score("who?\ud800", ["a passage"])
    with pytest.raises(ValueError, match=r"passages\[1\] is not valid unicode"):
        model.rerank("who?", ["fine", "a passage \udfff"])
    with pytest.raises(ValueError, match=r"contexts\[0\] is not valid unicode"):
        model.generate("who?", ["\udc80"], max_new_tokens=2)


@pytest.mark.parametrize("question_first", [False, True])
def test_the_passage_placeholder_inside_a_question_is_just_text(tokenizer, question_first: bool) -> None:
    """The prompt is split where the passage goes; a question quoting the internal placeholder cannot move it."""
    question = "what does \x00RANKRAG_PASSAGE\x00 mean?"
    templates = PromptTemplates(question_first=question_first)
    instruction = templates.ranking_instruction.format(question=question)
    passage = templates.ranking_passage.format(passage="PASSAGE TEXT")
    expected = (
        render_turn(tokenizer, templates, "", f"{instruction}\n\n{passage}")
        if question_first
        else render_turn(tokenizer, templates, passage, instruction)
    )
    assert render_ranking_prompt(tokenizer, templates, question, "PASSAGE TEXT") == expected

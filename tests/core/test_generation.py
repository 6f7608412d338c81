"""Generation on the embedded model: the answer, streaming, stop sequences, limits; and the pipeline."""

from __future__ import annotations

import asyncio

import pytest

from rankrag import GenerationOptions, PromptTemplates, RankRAGModel, rankrag_answer
from rankrag.model.generation import _EdgeTrimmer, _StopFilter, cut_at_stop

QUESTION = "What is the capital of Japan?"
CONTEXTS = ["Tokyo is the capital of Japan."]


@pytest.fixture(scope="module")
def prompt_ids(embedded_model: RankRAGModel) -> list[int]:
    return embedded_model.answer_prompt_ids(QUESTION, CONTEXTS)


@pytest.fixture(scope="module")
def greedy(embedded_model: RankRAGModel) -> str:
    return embedded_model.generate(QUESTION, CONTEXTS, max_new_tokens=12)


@pytest.fixture(scope="module")
def verbose_prompt_ids(base_model: RankRAGModel) -> list[int]:
    return base_model.answer_prompt_ids(QUESTION, CONTEXTS)


@pytest.fixture(scope="module")
def verbose_greedy(base_model: RankRAGModel) -> str:
    """The zero-shot base answers in a whole sentence (the tuned default answers "Tokyo"): room for stop tests."""
    return base_model.generate(QUESTION, CONTEXTS, max_new_tokens=12)


def test_answer_from_the_passage_names_tokyo(greedy: str) -> None:
    assert "Tokyo" in greedy


def test_stream_chunks_join_to_the_greedy_answer(embedded_model: RankRAGModel, greedy: str) -> None:
    chunks = list(embedded_model.stream(QUESTION, CONTEXTS, max_new_tokens=12))
    # how many chunks a one-word answer arrives in depends on the transformers version's streamer
    assert chunks and all(isinstance(c, str) and c for c in chunks)
    assert "".join(chunks) == greedy


def test_a_sentence_streams_in_several_chunks(base_model: RankRAGModel, verbose_greedy: str) -> None:
    chunks = list(base_model.stream(QUESTION, CONTEXTS, max_new_tokens=12))
    assert len(chunks) > 1 and "".join(chunks) == verbose_greedy


def test_stop_sequence_cuts_the_text(embedded_model: RankRAGModel, prompt_ids: list[int], greedy: str) -> None:
    stopped = embedded_model.generate_ids(prompt_ids, max_new_tokens=12, stop=["Tokyo"])
    assert stopped.text == greedy[: greedy.index("Tokyo")]
    assert stopped.finish_reason == "stop"
    streamed = "".join(embedded_model.stream_ids(prompt_ids, max_new_tokens=12, stop=["Tokyo"]))
    assert streamed == stopped.text


def test_a_single_stop_string_is_one_sequence(
    base_model: RankRAGModel, verbose_prompt_ids: list[int], verbose_greedy: str
) -> None:
    cut = verbose_greedy.index(" of")
    assert base_model.generate_ids(verbose_prompt_ids, max_new_tokens=12, stop=" of").text == verbose_greedy[:cut]


def test_max_new_tokens_limits_the_completion(base_model: RankRAGModel, verbose_prompt_ids: list[int]) -> None:
    result = base_model.generate_ids(verbose_prompt_ids, max_new_tokens=3)
    assert result.completion_tokens == 3
    assert result.finish_reason == "length"
    assert result.prompt_tokens == len(verbose_prompt_ids)


def test_seeded_sampling_is_reproducible(embedded_model: RankRAGModel, prompt_ids: list[int]) -> None:
    first = embedded_model.generate_ids(prompt_ids, max_new_tokens=6, temperature=0.9, seed=7)
    second = embedded_model.generate_ids(prompt_ids, max_new_tokens=6, temperature=0.9, seed=7)
    assert first.text == second.text


def test_pipeline_reranks_then_answers(embedded_model: RankRAGModel) -> None:
    passages = ["Bananas are yellow.", CONTEXTS[0], "Paris is the capital of France."]
    result = rankrag_answer(QUESTION, passages, model=embedded_model, top_k=2, max_new_tokens=12)
    assert result.question == QUESTION
    assert len(result.contexts) == 2
    assert all(passages[c.index] == c.text for c in result.contexts)
    assert result.contexts[0].score >= result.contexts[1].score
    assert result.answer.strip()
    assert embedded_model.answer(QUESTION, [], top_k=2).contexts == []


@pytest.mark.parametrize("style", ["chat", "chatqa"])
def test_stream_matches_generate_on_the_tiny_model(tiny_model: RankRAGModel, style: str) -> None:
    """Random weights emit odd whitespace and byte pieces: streamed text must still equal the generated text."""
    handle = tiny_model.with_options(templates=PromptTemplates(style=style))  # type: ignore[arg-type]
    prompt = handle.answer_prompt_ids("Where?", ["Somewhere far away."])
    for stop in (None, ["e"]):
        expected = handle.generate_ids(prompt, max_new_tokens=24, stop=stop).text
        assert "".join(handle.stream_ids(prompt, max_new_tokens=24, stop=stop)) == expected


# ------------------------------------------------------------------------ pure mechanics
def test_cut_at_stop_uses_the_earliest_sequence() -> None:
    assert cut_at_stop("one. two! three", [".", "!"]) == ("one", True)
    assert cut_at_stop("no stop here", ["###"]) == ("no stop here", False)


def test_stop_filter_holds_back_a_partial_stop_sequence() -> None:
    stops = _StopFilter(["###"])
    assert stops.feed("Hello #") == "Hello "
    assert stops.feed("#") == ""
    assert stops.feed("# world") == ""
    assert stops.done
    false_alarm = _StopFilter(["###"])
    assert false_alarm.feed("a ##") == "a "
    assert false_alarm.feed(" b") == "## b"
    assert false_alarm.flush() == ""


def test_edge_trimmer_drops_outer_whitespace_only() -> None:
    trim = _EdgeTrimmer()
    pieces = [trim.feed(c) for c in ["  ", "\n The", " answer ", "\n\n", "is", " 42. "]]
    assert "".join(pieces) == "The answer \n\nis 42."


@pytest.mark.parametrize(
    "kwargs",
    [{"max_new_tokens": 0}, {"temperature": -1.0}, {"top_p": 0.0}, {"top_p": 1.5}, {"stop": ("",)}],
)
def test_invalid_generation_options_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        GenerationOptions(**kwargs)  # type: ignore[arg-type]


def test_abandoned_stream_stops_generating(tiny_model: RankRAGModel) -> None:
    steps: list[int] = []
    hook = tiny_model.model.register_forward_hook(lambda *_: steps.append(1))
    try:
        chunks = tiny_model.stream("Where?", ["Somewhere far away."], max_new_tokens=2000)
        first = next(chunks)
        chunks.close()  # what a consumer's `break` does
    finally:
        hook.remove()
    assert first
    assert len(steps) < 1000, f"generation ran {len(steps)} steps after its consumer left"


# ---------------------------------------------------------------------------------- async
def test_async_generation_matches_sync(embedded_model: RankRAGModel, prompt_ids: list[int], greedy: str) -> None:
    async def run() -> tuple[str, str, str, str]:
        by_ids = await embedded_model.agenerate_ids(prompt_ids, max_new_tokens=12)
        streamed_ids = [chunk async for chunk in embedded_model.astream_ids(prompt_ids, max_new_tokens=12)]
        answer = await embedded_model.agenerate(QUESTION, CONTEXTS, max_new_tokens=12)
        streamed = [chunk async for chunk in embedded_model.astream(QUESTION, CONTEXTS, max_new_tokens=12)]
        return by_ids.text, "".join(streamed_ids), answer, "".join(streamed)

    assert asyncio.run(run()) == (greedy, greedy, greedy, greedy)


def test_async_bad_input_is_the_sync_error(embedded_model: RankRAGModel) -> None:
    async def first_chunk() -> str:
        async for chunk in embedded_model.astream("", CONTEXTS):
            return chunk
        return ""

    with pytest.raises(ValueError, match="question"):
        asyncio.run(first_chunk())


def test_abandoned_async_stream_stops_generating(tiny_model: RankRAGModel) -> None:
    steps: list[int] = []

    async def first_then_leave() -> str:
        chunks = tiny_model.astream("Where?", ["Somewhere far away."], max_new_tokens=2000)
        first = await anext(chunks)
        await chunks.aclose()  # what a consumer's `break` does
        return first

    hook = tiny_model.model.register_forward_hook(lambda *_: steps.append(1))
    try:
        first = asyncio.run(first_then_leave())
    finally:
        hook.remove()
    assert first
    assert len(steps) < 1000, f"generation ran {len(steps)} steps after its async consumer left"

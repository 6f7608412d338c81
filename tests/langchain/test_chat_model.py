"""RankRAGLLM beyond the standard suites: equal to the core, options honoured, async off the loop, clear errors."""

from __future__ import annotations

import asyncio
import re

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from rankrag.integration.messages import EMPTY_PROMPT_MESSAGE
from rankrag_langchain import RankRAGLLM

QUESTION = "What is the capital of France?"


def test_invoke_is_the_core_generation_with_usage(llm, embedded_model) -> None:  # type: ignore[no-untyped-def]
    messages = [SystemMessage("Answer briefly."), HumanMessage(QUESTION)]
    result = llm.invoke(messages)
    prompt = embedded_model.messages_prompt_ids(
        [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": QUESTION}]
    )
    expected = embedded_model.generate_ids(prompt, max_new_tokens=8)
    assert result.content == expected.text
    assert result.usage_metadata == {
        "input_tokens": len(prompt),
        "output_tokens": expected.completion_tokens,
        "total_tokens": len(prompt) + expected.completion_tokens,
    }
    assert 0 < expected.completion_tokens <= 8
    assert result.response_metadata["model_name"] == embedded_model.name
    assert result.response_metadata["finish_reason"] in ("stop", "length")


def test_stream_matches_invoke_and_reports_usage_once(llm) -> None:  # type: ignore[no-untyped-def]
    chunks = list(llm.stream(QUESTION))
    full = chunks[0]
    for chunk in chunks[1:]:
        full += chunk
    assert full.content.strip() == llm.invoke(QUESTION).content
    assert len([c for c in chunks if c.content]) >= 2, "expected the answer in several chunks"
    assert [c.usage_metadata is not None for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert chunks[-1].chunk_position == "last"
    usage = full.usage_metadata
    assert usage["input_tokens"] > 0 and 0 < usage["output_tokens"] <= 8 + 1
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


def test_max_tokens_per_instance_and_per_call(llm) -> None:  # type: ignore[no-untyped-def]
    long_question = "Write a long story about a dragon."
    assert llm.invoke(long_question, max_tokens=3).usage_metadata["output_tokens"] <= 3
    short = llm.model_copy(update={"max_tokens": 2})
    result = short.invoke(long_question)
    assert result.usage_metadata["output_tokens"] <= 2
    assert result.response_metadata["finish_reason"] == "length"


def test_stop_sequences_cut_the_answer(chat_llm) -> None:  # type: ignore[no-untyped-def]
    llm = chat_llm
    free = llm.invoke("Hello", max_tokens=12).content
    words = free.split()
    assert len(words) >= 3, f"need a few words to cut: {free!r}"
    stop = words[2]
    expected = free[: free.index(stop)].strip()
    stopped = llm.invoke("Hello", max_tokens=12, stop=[stop]).content
    assert stopped.strip() == expected and stop not in stopped
    with_field = llm.model_copy(update={"stop": [stop]}).invoke("Hello", max_tokens=12).content
    assert with_field == stopped
    streamed = "".join(c.content for c in llm.stream("Hello", max_tokens=12, stop=[stop]))
    assert streamed.strip() == expected


def test_temperature_samples_reproducibly_with_a_seed(llm) -> None:  # type: ignore[no-untyped-def]
    prompt = "Tell me a fun fact."
    hot = llm.model_copy(update={"temperature": 1.5, "seed": 7, "max_tokens": 4})
    first, second = hot.invoke(prompt).content, hot.invoke(prompt).content
    assert first == second
    samples = {hot.invoke(prompt, seed=seed).content for seed in (1, 2, 3)}
    assert len(samples) > 1, "temperature > 0 should sample different answers for different seeds"


def test_batch_and_async_forms(llm) -> None:  # type: ignore[no-untyped-def]
    prompts = ["Hello", "Name a color."]
    expected = [llm.invoke(prompt).content for prompt in prompts]
    assert [m.content for m in llm.batch(prompts)] == expected

    async def run() -> tuple[list[str], str]:
        batch = [m.content for m in await llm.abatch(prompts)]
        streamed = "".join([c.content async for c in llm.astream(prompts[0])])
        return batch, streamed

    batch, streamed = asyncio.run(run())
    assert batch == expected and streamed.strip() == expected[0]


async def test_async_forms_leave_the_loop_free(llm) -> None:  # type: ignore[no-untyped-def]
    assert type(llm)._agenerate is not BaseChatModel._agenerate
    assert type(llm)._astream is not BaseChatModel._astream
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0.005)

    task = asyncio.create_task(ticker())
    await llm.ainvoke("Hello")
    after_invoke = ticks
    async for _ in llm.astream("Hello"):
        pass
    done.set()
    await task
    assert after_invoke >= 3 and ticks - after_invoke >= 3, "the event loop was blocked while generating"


def test_tokens_reach_callbacks(llm) -> None:  # type: ignore[no-untyped-def]
    class Tokens(BaseCallbackHandler):
        def __init__(self) -> None:
            self.tokens: list[str] = []

        def on_llm_new_token(self, token: str, **kwargs: object) -> None:
            self.tokens.append(token)

    handler = Tokens()
    streamed = "".join(c.content for c in llm.stream("Hello", config={"callbacks": [handler]}))
    assert "".join(handler.tokens) == streamed and len(handler.tokens) >= 2


def test_conversation_turns_are_merged_per_role(llm, embedded_model) -> None:  # type: ignore[no-untyped-def]
    messages = [HumanMessage("Hi."), HumanMessage("I am Ada."), AIMessage("Hello Ada!"), HumanMessage("Who am I?")]
    expected = embedded_model.messages_prompt_ids(
        [
            {"role": "user", "content": "Hi.\n\nI am Ada."},
            {"role": "assistant", "content": "Hello Ada!"},
            {"role": "user", "content": "Who am I?"},
        ]
    )
    assert llm.invoke(messages).usage_metadata["input_tokens"] == len(expected)


def test_text_content_blocks_are_read_and_other_blocks_refused(llm) -> None:  # type: ignore[no-untyped-def]
    blocks = HumanMessage(content=[{"type": "text", "text": "Hello"}])
    assert llm.invoke([blocks]).content == llm.invoke("Hello").content
    image = HumanMessage(
        content=[{"type": "text", "text": "What is this?"}, {"type": "image", "url": "https://x/y.png"}]
    )
    with pytest.raises(ValueError, match="reads text only.*'image'"):
        llm.invoke([image])


def test_bad_calls_are_clear_errors(llm) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="cannot switch to 'other/model' per call"):
        llm.invoke("Hello", model="other/model")
    with pytest.raises(ValueError, match=r"does not support the call options \['tools'\]"):
        llm.invoke("Hello", tools=[{"name": "x"}])
    with pytest.raises(ValueError, match="max_tokens"):
        RankRAGLLM(model=llm.model, max_tokens=0)
    with pytest.raises(ValueError, match="max_new_tokens must be at least 1"):
        llm.invoke("Hello", max_tokens=0)


def test_tracing_params(llm, embedded_model) -> None:  # type: ignore[no-untyped-def]
    params = llm._get_ls_params(stop=["x"])
    assert params["ls_provider"] == "rankrag"
    assert params["ls_model_name"] == embedded_model.name
    assert params["ls_max_tokens"] == 8 and params["ls_temperature"] == 0.0 and params["ls_stop"] == ["x"]
    assert llm._llm_type == "rankrag-chat"
    assert llm._identifying_params["model_name"] == embedded_model.name


EMPTY_PROMPTS = [
    "",
    "  \n\t",
    [],
    [HumanMessage(content="")],
    [HumanMessage(content=[{"type": "text", "text": " "}])],
    [SystemMessage(content="Answer briefly."), HumanMessage(content="   ")],
]


@pytest.mark.parametrize("prompt", EMPTY_PROMPTS, ids=repr)
def test_an_empty_prompt_is_a_clear_error_in_every_form(llm, prompt) -> None:  # type: ignore[no-untyped-def]
    """The same message as rankrag_llamaindex.RankRAGLLM (rankrag.integration.messages.EMPTY_PROMPT_MESSAGE)."""
    empty = re.escape(EMPTY_PROMPT_MESSAGE)
    with pytest.raises(ValueError, match=empty):
        llm.invoke(prompt)
    with pytest.raises(ValueError, match=empty):
        list(llm.stream(prompt))
    with pytest.raises(ValueError, match=empty):
        llm.batch([prompt])
    with pytest.raises(ValueError, match=empty):
        llm.model_copy(update={"streaming": True}).invoke(prompt)

    async def run_async() -> None:
        with pytest.raises(ValueError, match=empty):
            await llm.ainvoke(prompt)
        with pytest.raises(ValueError, match=empty):
            [chunk async for chunk in llm.astream(prompt)]

    asyncio.run(run_async())


def test_a_conversation_with_text_is_answered(llm) -> None:  # type: ignore[no-untyped-def]
    """Only a conversation without any text is refused: a blank turn beside a real one is fine."""
    reply = llm.invoke([HumanMessage(content=QUESTION), AIMessage(content=""), HumanMessage(content=QUESTION)])
    assert reply.content.strip()

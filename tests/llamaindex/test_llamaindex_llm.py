"""RankRAGLLM as a LlamaIndex LLM: metadata, chat template, streaming, async, options, LlamaIndex callers."""

from __future__ import annotations

import asyncio
import re

import pytest
from llama_index.core.llms import ChatMessage, MessageRole
from llama_index.core.postprocessor import LLMRerank
from llama_index.core.prompts import PromptTemplate

from rankrag.integration.messages import EMPTY_PROMPT_MESSAGE
from rankrag_llamaindex import RankRAGLLM

FRANCE = "What is the capital of France?"
ITALY = [
    ChatMessage(role=MessageRole.SYSTEM, content="Answer in one short sentence."),
    ChatMessage(role=MessageRole.USER, content="What is the capital of Italy?"),
]
ITALY_DICTS = [{"role": "system", "content": ITALY[0].content}, {"role": "user", "content": ITALY[1].content}]


def test_metadata_describes_the_shared_model(llm, embedded_model):
    metadata = llm.metadata
    assert metadata.context_window == embedded_model.context_window > 0
    assert metadata.num_output == llm.max_new_tokens == 8
    assert metadata.is_chat_model is True
    assert metadata.model_name == embedded_model.name
    assert llm.model is embedded_model


def test_complete_sends_the_prompt_as_a_chat_user_turn(chat_llm, base_model):
    llm = chat_llm
    response = llm.complete(FRANCE)
    assert "Paris" in response.text
    usage = response.additional_kwargs
    assert usage["prompt_tokens"] == len(base_model.messages_prompt_ids([{"role": "user", "content": FRANCE}]))
    assert 0 < usage["completion_tokens"] <= 8
    streamed = list(llm.stream_complete(FRANCE))
    assert "".join(chunk.delta for chunk in streamed) == streamed[-1].text == response.text
    assert len(streamed) > 1


def test_formatted_prompt_is_sent_verbatim(llm, embedded_model):
    templated = embedded_model.tokenizer.apply_chat_template(
        [{"role": "user", "content": FRANCE}], tokenize=False, add_generation_prompt=True
    )
    verbatim = llm.complete(templated, formatted=True, max_new_tokens=3)
    assert verbatim.additional_kwargs["prompt_tokens"] == len(
        embedded_model.messages_prompt_ids([{"role": "user", "content": FRANCE}])
    )
    assert verbatim.text == llm.complete(FRANCE, max_new_tokens=3).text


def test_chat_uses_the_models_chat_template(chat_llm, base_model):
    llm = chat_llm
    response = llm.chat(ITALY)
    assert response.message.role == MessageRole.ASSISTANT
    assert "Rome" in response.message.content
    assert response.raw["prompt_tokens"] == len(base_model.messages_prompt_ids(ITALY_DICTS))
    streamed = list(llm.stream_chat(ITALY))
    assert "".join(chunk.delta for chunk in streamed) == streamed[-1].message.content == response.message.content


def test_system_prompt_precedes_completion_prompts(embedded_model):
    llm = RankRAGLLM(model=embedded_model, max_new_tokens=1, system_prompt="Answer in French.")
    response = llm.complete(FRANCE)
    expected = [{"role": "system", "content": "Answer in French."}, {"role": "user", "content": FRANCE}]
    assert response.additional_kwargs["prompt_tokens"] == len(embedded_model.messages_prompt_ids(expected))


def test_per_call_options_override_the_defaults(llm):
    assert llm.complete(FRANCE, max_new_tokens=2).additional_kwargs["completion_tokens"] <= 2
    assert llm.complete(FRANCE, max_tokens=1).additional_kwargs["completion_tokens"] == 1
    stopped = llm.complete(FRANCE, stop=["France"])
    assert stopped.text.strip() and "France" not in stopped.text
    assert "France" not in "".join(c.delta for c in llm.stream_complete(FRANCE, stop=["France"]))


def test_bad_calls_raise_clear_errors(llm):
    with pytest.raises(TypeError, match="unsupported generation options"):
        llm.complete(FRANCE, frequency_penalty=1.0)
    with pytest.raises(TypeError, match=r"messages\[0\] must be a ChatMessage"):
        llm.chat([{"role": "user", "content": "hi"}])
    with pytest.raises(ValueError, match="max_new_tokens"):
        llm.complete(FRANCE, max_new_tokens=0)
    with pytest.raises(ValueError, match="loaded RankRAGModel together with load options"):
        RankRAGLLM(model=llm.model, quantization="4bit")
    with pytest.raises(TypeError, match="model must be"):
        RankRAGLLM(model=42)


async def test_async_forms_match_sync_and_keep_the_event_loop_free(chat_llm):
    llm = chat_llm
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0.005)

    async def generate() -> tuple[str, str, str, str]:
        try:
            completion = await llm.acomplete(FRANCE)
            stream = await llm.astream_complete(FRANCE)
            streamed = "".join([chunk.delta async for chunk in stream])
            chat = await llm.achat(ITALY)
            chat_stream = await llm.astream_chat(ITALY)
            chat_streamed = "".join([chunk.delta async for chunk in chat_stream])
            return completion.text, streamed, chat.message.content, chat_streamed
        finally:
            done.set()

    (completion, streamed, chat, chat_streamed), _ = await asyncio.gather(generate(), ticker())
    assert "Paris" in completion and streamed == completion
    assert "Rome" in chat and chat_streamed == chat
    # Four generations of up to 8 tokens take far longer than 20 ticks; a blocked loop would barely tick.
    assert ticks > 20


def test_predict_through_llamaindex_prompt_machinery(chat_llm):
    llm = chat_llm
    answer = llm.predict(PromptTemplate("What is the capital of {country}?"), country="France")
    assert "Paris" in answer
    assert "Paris" in "".join(llm.stream(PromptTemplate("What is the capital of {country}?"), country="France"))


def test_llamaindex_llm_rerank_runs_on_rankrag_llm(llm, hamlet_nodes):
    rerank = LLMRerank(llm=llm, top_n=2, choice_batch_size=3)
    reranked = rerank.postprocess_nodes(hamlet_nodes, query_str="Who wrote Hamlet?")
    # A 135M model rarely follows LLMRerank's answer format: any parse (even none) is fine, crashing is not.
    assert len(reranked) <= 2
    assert all(node.node.node_id in {"n0", "n1", "n2"} for node in reranked)


EMPTY = re.escape(EMPTY_PROMPT_MESSAGE)  # the same message as rankrag_langchain.RankRAGLLM


@pytest.mark.parametrize("prompt", ["", "  \n\t"], ids=repr)
def test_an_empty_prompt_is_a_clear_error_in_every_form(llm, prompt):
    for formatted in (False, True):
        with pytest.raises(ValueError, match=EMPTY):
            llm.complete(prompt, formatted=formatted)
        with pytest.raises(ValueError, match=EMPTY):
            list(llm.stream_complete(prompt, formatted=formatted))
    with pytest.raises(ValueError, match=EMPTY):
        llm.model_copy(update={"system_prompt": "Answer briefly."}).complete(prompt)

    async def run_async() -> None:
        with pytest.raises(ValueError, match=EMPTY):
            await llm.acomplete(prompt)
        with pytest.raises(ValueError, match=EMPTY):
            [chunk async for chunk in await llm.astream_complete(prompt)]

    asyncio.run(run_async())


@pytest.mark.parametrize(
    "messages",
    [
        [],
        [ChatMessage(role=MessageRole.USER, content="")],
        [ChatMessage(role=MessageRole.USER, content=None)],
        [ITALY[0], ChatMessage(role=MessageRole.USER, content="   ")],
    ],
    ids=["no messages", "empty", "no content", "system prompt only"],
)
def test_an_empty_chat_is_a_clear_error_in_every_form(llm, messages):
    with pytest.raises(ValueError, match=EMPTY):
        llm.chat(messages)
    with pytest.raises(ValueError, match=EMPTY):
        list(llm.stream_chat(messages))

    async def run_async() -> None:
        with pytest.raises(ValueError, match=EMPTY):
            await llm.achat(messages)
        with pytest.raises(ValueError, match=EMPTY):
            [chunk async for chunk in await llm.astream_chat(messages)]

    asyncio.run(run_async())

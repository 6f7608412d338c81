"""QA examples rendered in the prompt shapes users send, token for token as the framework classes send them."""

from __future__ import annotations

from pathlib import Path

import pytest

from rankrag.train.blend import QA_TASKS, REPLAY_TASK, BlendConfig, BlendExample, build_blend
from rankrag.train.replay import replay_examples, replay_instructions
from rankrag.train.shapes import USER_SHAPES, render_shape
from rankrag.train.sources import QAQuery
from rankrag.train.trainer import ExampleEncoder

QUESTION = "What is the capital of Japan?"
PASSAGES = ["Tokyo is the capital of Japan.", "Kyoto was the imperial capital until 1868."]


@pytest.mark.parametrize("shape", USER_SHAPES)
def test_every_user_shape_holds_the_question_and_every_passage(shape: str) -> None:
    messages = render_shape(shape, QUESTION, PASSAGES, "Tokyo", key="k")
    text = "\n".join(m["content"] for m in messages)
    assert QUESTION in text and all(p in text for p in PASSAGES)
    assert messages[-1]["role"] == "user"


def test_an_unknown_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown prompt shape 'xml'"):
        render_shape("xml", QUESTION, PASSAGES, "Tokyo", key="k")


def test_llamaindex_shapes_are_llamaindex_default_templates() -> None:
    from llama_index.core.prompts.chat_prompts import CHAT_TEXT_QA_PROMPT

    from rankrag_llamaindex._convert import chat_messages_to_dicts

    sent = CHAT_TEXT_QA_PROMPT.format_messages(context_str="\n\n".join(PASSAGES), query_str=QUESTION)
    assert chat_messages_to_dicts(sent) == render_shape("llamaindex_text_qa", QUESTION, PASSAGES, "Tokyo", key="k")


def test_a_langchain_system_human_prompt_renders_as_the_chat_model_sends_it(base_model) -> None:  # type: ignore[no-untyped-def]
    from langchain_core.prompts import ChatPromptTemplate

    from rankrag_langchain._convert import messages_to_dicts

    for key in ("a", "b", "c", "d", "e", "f"):
        expected = render_shape("system_human", QUESTION, PASSAGES, "Tokyo", key=key)
        template = ChatPromptTemplate.from_messages(
            [(m["role"] if m["role"] == "system" else "human", m["content"]) for m in expected]
        )
        sent = template.format_messages()  # the contents hold no braces: the template is already filled
        assert messages_to_dicts(sent) == expected


def test_the_encoder_renders_a_shaped_example_through_the_chat_template(base_model) -> None:  # type: ignore[no-untyped-def]
    encoder = ExampleEncoder(base_model.tokenizer, max_context_tokens=128)
    example = BlendExample("context_qa", "s", "g", QUESTION, tuple(PASSAGES), "Tokyo", id="x", shape="plain_user")
    encoded = encoder.encode(example)
    assert encoded is not None
    messages = render_shape("plain_user", QUESTION, PASSAGES, "Tokyo", key="x")
    assert encoded.prompt_ids == base_model.messages_prompt_ids(messages)
    assert base_model.tokenizer.decode(encoded.completion_ids).startswith("Tokyo")


def test_user_shape_share_reshapes_qa_only_and_zero_keeps_the_blend_as_it_was(mini_data_dir: Path) -> None:
    before = build_blend(mini_data_dir, BlendConfig(size=300, seed=11))
    assert before == build_blend(mini_data_dir, BlendConfig(size=300, seed=11, user_shape_share=0.0))
    shaped = build_blend(mini_data_dir, BlendConfig(size=300, seed=11, user_shape_share=1.0))
    assert {e.shape for e in shaped if e.task in QA_TASKS} <= set(USER_SHAPES)
    assert all(e.shape == "rankrag" for e in shaped if e.task not in QA_TASKS)
    assert len({e.shape for e in shaped if e.task in QA_TASKS}) == len(USER_SHAPES)


def test_replay_answers_come_from_the_base_model_and_encode_as_a_plain_chat_turn(base_model) -> None:  # type: ignore[no-untyped-def]
    query = QAQuery("squad_v1.1_pool", "Tokyo", "What is the capital of Japan?", ("Tokyo",), (PASSAGES[0],), ())
    instructions = replay_instructions([query, query], 2, seed=1)
    examples = replay_examples(base_model, instructions, max_new_tokens=48, progress=False)
    assert examples and all(e.task == REPLAY_TASK and e.target and e.group == "Tokyo" for e in examples)
    single = base_model.generate_ids(
        base_model.messages_prompt_ids([{"role": "user", "content": examples[0].question}]), max_new_tokens=48
    )
    assert examples[0].target == single.text  # the base's own greedy answer
    encoded = ExampleEncoder(base_model.tokenizer).encode(examples[0])
    assert encoded is not None
    assert encoded.prompt_ids == base_model.messages_prompt_ids([{"role": "user", "content": examples[0].question}])

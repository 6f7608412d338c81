"""RankRAG prompt rendering: chat-template style (SmolLM2), raw ChatQA style, variants and overrides."""

from __future__ import annotations

import pytest

from rankrag.model.prompts import (
    SYSTEM_TEXT,
    PromptTemplates,
    answer_lead,
    ranking_parts,
    render_generation_prompt,
    render_messages,
    render_multi_ranking_prompt,
    render_ranking_prompt,
    resolve_style,
)

QUESTION = "What is the capital of Japan?"
PASSAGE = "Tokyo is the capital of Japan."
INSTRUCTION = (
    f"For the question {QUESTION}, access whether the passage is relevant to the question. "
    "Return True if relevant, otherwise False."
)
CHATQA = PromptTemplates(style="chatqa")


def test_auto_style_follows_the_chat_template(smollm2_tokenizer) -> None:
    assert resolve_style(smollm2_tokenizer, PromptTemplates()) == "chat"
    assert resolve_style(smollm2_tokenizer, CHATQA) == "chatqa"


def test_chat_ranking_prompt_uses_the_smollm2_template(smollm2_tokenizer) -> None:
    text = render_ranking_prompt(smollm2_tokenizer, PromptTemplates(), QUESTION, PASSAGE)
    expected = (
        f"<|im_start|>system\n{SYSTEM_TEXT}<|im_end|>\n"
        f"<|im_start|>user\nPassage: {PASSAGE}\n\n{INSTRUCTION}<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert text == expected
    messages = [
        {"role": "system", "content": SYSTEM_TEXT},
        {"role": "user", "content": f"Passage: {PASSAGE}\n\n{INSTRUCTION}"},
    ]
    assert text == smollm2_tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def test_raw_chatqa_ranking_prompt(smollm2_tokenizer) -> None:
    text = render_ranking_prompt(smollm2_tokenizer, CHATQA, QUESTION, PASSAGE)
    assert text == f"System: {SYSTEM_TEXT}\n\nPassage: {PASSAGE}\n\nUser: {INSTRUCTION}\n\nAssistant:"


def test_question_first_puts_the_instruction_before_the_passage(smollm2_tokenizer) -> None:
    templates = CHATQA.with_options(question_first=True)
    text = render_ranking_prompt(smollm2_tokenizer, templates, QUESTION, PASSAGE)
    assert text == f"System: {SYSTEM_TEXT}\n\nUser: {INSTRUCTION}\n\nPassage: {PASSAGE}\n\nAssistant:"
    parts = ranking_parts(smollm2_tokenizer, PromptTemplates(question_first=True), QUESTION)
    assert QUESTION in parts.prefix and QUESTION not in parts.suffix
    assert parts.suffix.endswith("<|im_start|>assistant\n")


def test_ranking_parts_split_exactly_around_the_passage(smollm2_tokenizer) -> None:
    for templates in (PromptTemplates(), CHATQA):
        parts = ranking_parts(smollm2_tokenizer, templates, QUESTION)
        assert parts.prefix + PASSAGE + parts.suffix == render_ranking_prompt(
            smollm2_tokenizer, templates, QUESTION, PASSAGE
        )
        assert QUESTION in parts.suffix  # the instruction follows the passage by default


def test_generation_prompt_numbers_the_passages(smollm2_tokenizer) -> None:
    text = render_generation_prompt(smollm2_tokenizer, CHATQA, QUESTION, ["first", "second"])
    assert text == (
        f"System: {SYSTEM_TEXT}\n\nPassage 1: first\n\nPassage 2: second\n\n"
        f"User: {QUESTION}. Answer the above question with a short phrase.\n\nAssistant:"
    )
    chat = render_generation_prompt(smollm2_tokenizer, PromptTemplates(), QUESTION, ["first"])
    assert "<|im_start|>user\nPassage 1: first\n\n" in chat
    assert chat.endswith("<|im_start|>assistant\n")


def test_multi_ranking_prompt_lists_all_passages(smollm2_tokenizer) -> None:
    text = render_multi_ranking_prompt(smollm2_tokenizer, CHATQA, QUESTION, ["a", "b", "c"])
    assert "Passage 1: a\n\nPassage 2: b\n\nPassage 3: c" in text
    assert "Return all the relevant passage id." in text


def test_templates_override_every_text(smollm2_tokenizer) -> None:
    templates = PromptTemplates(
        style="chatqa",
        system="Be brief.",
        ranking_instruction="Is this about {question}? Yes or No.",
        ranking_passage="Document: {passage}",
        true_word="Yes",
        false_word="No",
    )
    text = render_ranking_prompt(smollm2_tokenizer, templates, "cats", "Cats purr.")
    assert text == "System: Be brief.\n\nDocument: Cats purr.\n\nUser: Is this about cats? Yes or No.\n\nAssistant:"
    no_system = render_ranking_prompt(smollm2_tokenizer, templates.with_options(system=""), "cats", "Cats purr.")
    assert no_system.startswith("Document: Cats purr.")
    chat = render_ranking_prompt(smollm2_tokenizer, templates.with_options(style="chat"), "cats", "Cats purr.")
    assert "<|im_start|>system\nBe brief.<|im_end|>" in chat


def test_braces_in_user_text_are_kept_verbatim(smollm2_tokenizer) -> None:
    text = render_ranking_prompt(smollm2_tokenizer, CHATQA, "what does {x} mean?", "f({passage}) = {index}")
    assert "what does {x} mean?" in text and "f({passage}) = {index}" in text
    generation = render_generation_prompt(smollm2_tokenizer, CHATQA, "what is {q}?", ["{passage} {index}"])
    assert "Passage 1: {passage} {index}" in generation


def test_chat_style_without_a_chat_template_is_refused(smollm2_dir) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    tokenizer.chat_template = None
    assert resolve_style(tokenizer, PromptTemplates()) == "chatqa"
    with pytest.raises(ValueError, match="chat template"):
        render_ranking_prompt(tokenizer, PromptTemplates(style="chat"), QUESTION, PASSAGE)


def test_answer_lead_and_free_form_messages(smollm2_tokenizer) -> None:
    assert answer_lead(smollm2_tokenizer, CHATQA) == " "
    assert answer_lead(smollm2_tokenizer, PromptTemplates()) == ""
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "Hi"}]
    assert render_messages(smollm2_tokenizer, CHATQA, messages) == "System: S\n\nUser: Hi\n\nAssistant:"
    chat = render_messages(smollm2_tokenizer, PromptTemplates(), messages)
    assert chat == smollm2_tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


NO_SYSTEM_TEMPLATE = (  # the shape of Gemma's template: a system message is an error
    "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}<start_of_turn>{{ m['role'] }}\n{{ m['content'] }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


def test_chat_template_without_a_system_role_gets_the_system_text_in_the_user_turn(smollm2_dir) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    tokenizer.chat_template = NO_SYSTEM_TEMPLATE
    text = render_ranking_prompt(tokenizer, PromptTemplates(), QUESTION, PASSAGE)
    assert text == (
        f"<start_of_turn>user\n{SYSTEM_TEXT}\n\nPassage: {PASSAGE}\n\n{INSTRUCTION}<end_of_turn>\n<start_of_turn>model\n"
    )
    parts = ranking_parts(tokenizer, PromptTemplates(), QUESTION)
    assert parts.prefix.endswith("Passage: ") and parts.suffix.endswith("<start_of_turn>model\n")
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "Hi"}]
    assert render_messages(tokenizer, PromptTemplates(), messages) == (
        "<start_of_turn>user\nS\n\nHi<end_of_turn>\n<start_of_turn>model\n"
    )

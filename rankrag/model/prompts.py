"""RankRAG prompt templates (Yu et al., 2024, ChatQA style) and their rendering.

Two renderings exist. ``chat`` goes through the tokenizer's chat template (SmolLM2, Llama-3-Instruct,
...): the system text is the system message, the passage(s) and the instruction form the user turn.
``chatqa`` is the raw ``System: / Passage: / User: / Assistant:`` text that ChatQA-style models were
trained on. ``auto`` picks ``chat`` when the tokenizer has a chat template.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from transformers import PreTrainedTokenizerBase

PromptStyle = Literal["auto", "chat", "chatqa"]

SYSTEM_TEXT = (
    "This is a chat between a user and an artificial intelligence assistant. The assistant gives "
    "helpful, detailed, and polite answers to the user's questions based on the context. The "
    "assistant should also indicate when the answer cannot be found in the context."
)
RANKING_INSTRUCTION = (
    "For the question {question}, access whether the passage is relevant to the question. "
    "Return True if relevant, otherwise False."
)
MULTI_RANKING_INSTRUCTION = (
    "For the question {question}, access whether the above passages are relevant to the question. "
    "Return all the relevant passage id."
)
GENERATION_INSTRUCTION = "{question}. Answer the above question with a short phrase."

_PASSAGE_SLOT = "\u0000RANKRAG_PASSAGE\u0000"


@dataclass(frozen=True)
class PromptTemplates:
    """The texts of RankRAG's prompts. Override any field to change a prompt.

    ``ranking_passage`` and ``generation_passage`` format one passage; ``{index}`` is 1-based.
    ``question_first`` puts the question before the passage in the ranking prompt, so that the whole
    prefix up to the passage is shared by all passages of a query (cheaper with prefix caching).
    """

    system: str = SYSTEM_TEXT
    ranking_instruction: str = RANKING_INSTRUCTION
    multi_ranking_instruction: str = MULTI_RANKING_INSTRUCTION
    generation_instruction: str = GENERATION_INSTRUCTION
    ranking_passage: str = "Passage: {passage}"
    generation_passage: str = "Passage {index}: {passage}"
    true_word: str = "True"
    false_word: str = "False"
    style: PromptStyle = "auto"
    question_first: bool = False

    def with_options(self, **changes: object) -> PromptTemplates:
        return replace(self, **changes)  # type: ignore[arg-type]  # field types are checked by the dataclass, not by mypy on **changes


@dataclass(frozen=True)
class PromptParts:
    """A prompt split around the single passage it holds: ``prefix + passage + suffix``."""

    prefix: str
    suffix: str


def resolve_style(tokenizer: PreTrainedTokenizerBase, templates: PromptTemplates) -> Literal["chat", "chatqa"]:
    if templates.style == "auto":
        return "chat" if getattr(tokenizer, "chat_template", None) else "chatqa"
    if templates.style == "chat" and not getattr(tokenizer, "chat_template", None):
        raise ValueError("style='chat' needs a tokenizer with a chat template; use style='chatqa'")
    return templates.style


def render_turn(
    tokenizer: PreTrainedTokenizerBase,
    templates: PromptTemplates,
    context: str,
    instruction: str,
    *,
    system: str | None = None,
) -> str:
    """One user turn made of ``context`` then ``instruction``, ready for the assistant's answer."""
    system_text = templates.system if system is None else system
    if resolve_style(tokenizer, templates) == "chatqa":
        parts = [f"System: {system_text}"] if system_text else []
        if context:
            parts.append(context)
        parts.append(f"User: {instruction}")
        return "\n\n".join(parts) + "\n\nAssistant:"
    user = f"{context}\n\n{instruction}" if context else instruction
    messages = [{"role": "system", "content": system_text}] if system_text else []
    messages.append({"role": "user", "content": user})
    return apply_chat_template(tokenizer, messages)


def apply_chat_template(tokenizer: PreTrainedTokenizerBase, messages: Sequence[dict[str, str]]) -> str:
    """The chat template's prompt awaiting the assistant's turn.

    Templates that refuse a system role (Gemma, Mistral's older ones) get the system text at the start of
    the first user message instead, which is how those models are meant to see it.
    """
    from jinja2 import TemplateError

    try:
        return str(tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True))
    except TemplateError:
        if not any(m["role"] == "system" for m in messages):
            raise
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    rest = [dict(m) for m in messages if m["role"] != "system"]
    first_user = next((m for m in rest if m["role"] == "user"), None)
    if first_user is None:
        rest.insert(0, {"role": "user", "content": system})
    else:
        first_user["content"] = f"{system}\n\n{first_user['content']}"
    return str(tokenizer.apply_chat_template(rest, tokenize=False, add_generation_prompt=True))


def ranking_parts(tokenizer: PreTrainedTokenizerBase, templates: PromptTemplates, question: str) -> PromptParts:
    """The ranking prompt for ``question``, split where the passage goes."""
    passage = templates.ranking_passage.format(passage=_PASSAGE_SLOT)
    instruction = templates.ranking_instruction.format(question=question)
    if templates.question_first:
        text = render_turn(tokenizer, templates, "", f"{instruction}\n\n{passage}")
    else:
        text = render_turn(tokenizer, templates, passage, instruction)
    # A question quoting the slot marker must not move the split: the real slot follows the question
    # when the question comes first, and precedes it otherwise.
    split = text.rpartition if templates.question_first else text.partition
    prefix, _, suffix = split(_PASSAGE_SLOT)
    return PromptParts(prefix=prefix, suffix=suffix)


def render_ranking_prompt(
    tokenizer: PreTrainedTokenizerBase, templates: PromptTemplates, question: str, passage: str
) -> str:
    parts = ranking_parts(tokenizer, templates, question)
    return parts.prefix + passage + parts.suffix


def format_passages(templates: PromptTemplates, passages: Sequence[str]) -> str:
    return "\n\n".join(templates.generation_passage.format(index=i, passage=p) for i, p in enumerate(passages, start=1))


def render_generation_prompt(
    tokenizer: PreTrainedTokenizerBase, templates: PromptTemplates, question: str, contexts: Sequence[str]
) -> str:
    """RankRAG's answer prompt: ``Passage 1..k`` then the short-answer instruction."""
    instruction = templates.generation_instruction.format(question=question.strip())
    return render_turn(tokenizer, templates, format_passages(templates, contexts), instruction)


def render_multi_ranking_prompt(
    tokenizer: PreTrainedTokenizerBase, templates: PromptTemplates, question: str, passages: Sequence[str]
) -> str:
    """Retrieval-augmented ranking: several passages, answer with the ids of the relevant ones."""
    instruction = templates.multi_ranking_instruction.format(question=question.strip())
    return render_turn(tokenizer, templates, format_passages(templates, passages), instruction)


def answer_lead(tokenizer: PreTrainedTokenizerBase, templates: PromptTemplates) -> str:
    """What precedes the first answer word: a space after ``Assistant:``, nothing after a chat header."""
    return " " if resolve_style(tokenizer, templates) == "chatqa" else ""


def render_messages(
    tokenizer: PreTrainedTokenizerBase, templates: PromptTemplates, messages: Sequence[dict[str, str]]
) -> str:
    """A free-form conversation (role/content dicts) as a prompt awaiting the assistant's turn."""
    if resolve_style(tokenizer, templates) == "chat":
        return apply_chat_template(tokenizer, messages)
    names = {"system": "System", "user": "User", "assistant": "Assistant"}
    lines = [f"{names.get(m['role'], m['role'].capitalize())}: {m['content']}" for m in messages]
    return "\n\n".join(lines) + "\n\nAssistant:"

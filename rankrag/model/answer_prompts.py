"""Answer prompts as token ids (RankRAG's generation prompt, or a chat conversation), built from a tokenizer alone.

:class:`RankRAGModel` and training build their answer prompts here, so both send the model the same ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from transformers import PreTrainedTokenizerBase

from rankrag.model.prompts import PromptTemplates, render_generation_prompt, render_messages, resolve_style

DEFAULT_MAX_CONTEXT_TOKENS = 384


def answer_prompt_ids(
    tokenizer: PreTrainedTokenizerBase,
    templates: PromptTemplates,
    question: str,
    contexts: Sequence[str],
    max_context_tokens: int = DEFAULT_MAX_CONTEXT_TOKENS,
) -> list[int]:
    """RankRAG's generation prompt as token ids; each context is cut to ``max_context_tokens``."""
    # Cutting the text first bounds tokenizer work on huge contexts, as in RankingEncoder.
    char_limit = max_context_tokens * 16 + 64
    cut = (
        [
            cast(str, tokenizer.decode(ids[:max_context_tokens]))
            for ids in tokenizer([c[:char_limit] for c in contexts], add_special_tokens=False)["input_ids"]
        ]
        if contexts
        else []
    )
    text = render_generation_prompt(tokenizer, templates, question, cut)
    return tokenizer.encode(text, add_special_tokens=resolve_style(tokenizer, templates) == "chatqa")


def messages_prompt_ids(
    tokenizer: PreTrainedTokenizerBase, templates: PromptTemplates, messages: Sequence[dict[str, str]]
) -> list[int]:
    """A chat conversation as the model's prompt token ids (its chat template, or ChatQA's format)."""
    text = render_messages(tokenizer, templates, messages)
    return tokenizer.encode(text, add_special_tokens=resolve_style(tokenizer, templates) == "chatqa")

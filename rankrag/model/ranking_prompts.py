"""Ranking prompts as token ids: the answer tokens, the encoder, and the shared-prefix split.

Only a tokenizer is needed (no weights): the in-process scorer, the served model and training build the same ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from rankrag.errors import PassageTooLongError
from rankrag.model.prompts import PromptTemplates, answer_lead, ranking_parts, resolve_style
from rankrag.model.scoring_options import ScoringOptions


def answer_token_ids(tokenizer: PreTrainedTokenizerBase, templates: PromptTemplates) -> tuple[int, int]:
    """First token of the True and False answers as the model would write them after the prompt."""
    lead = answer_lead(tokenizer, templates)
    ids = []
    for word in (templates.true_word, templates.false_word):
        tokens = tokenizer.encode(lead + word, add_special_tokens=False)
        if not tokens:
            raise ValueError(f"the tokenizer encodes the answer word {word!r} to no tokens")
        ids.append(tokens[0])
    if ids[0] == ids[1]:
        raise ValueError(f"{templates.true_word!r} and {templates.false_word!r} start with the same token")
    return ids[0], ids[1]


class RankingEncoder:
    """Tokenizes ranking prompts; a long passage is cut inside the passage, never in the instruction."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, templates: PromptTemplates, options: ScoringOptions):
        self.tokenizer = tokenizer
        self.templates = templates
        self.options = options
        self._adds_bos = resolve_style(tokenizer, templates) == "chatqa"

    def prefix_and_suffix(self, question: str) -> tuple[list[int], list[int]]:
        parts = ranking_parts(self.tokenizer, self.templates, question)
        prefix = self.tokenizer.encode(parts.prefix, add_special_tokens=self._adds_bos)
        suffix = self.tokenizer.encode(parts.suffix, add_special_tokens=False)
        return prefix, suffix

    def passage_budget(self, prefix: list[int], suffix: list[int]) -> int:
        budget = min(self.options.max_passage_tokens, self.options.max_length - len(prefix) - len(suffix))
        if budget < 1:
            raise ValueError(
                f"the question and instruction take {len(prefix) + len(suffix)} tokens, leaving no room for a "
                f"passage within max_length={self.options.max_length}; shorten the question"
            )
        return budget

    def encode_passages(self, passages: Sequence[str], budget: int) -> list[list[int]]:
        # Cutting the text first bounds tokenizer work on huge inputs; no token has 16+ characters of budget.
        char_limit = budget * 16 + 64
        encoded = self.tokenizer(
            [p[:char_limit] if self.options.truncate else p for p in passages], add_special_tokens=False
        )["input_ids"]
        result = []
        for index, ids in enumerate(encoded):
            if len(ids) > budget and not self.options.truncate:
                raise PassageTooLongError(
                    f"passages[{index}] has {len(ids)} tokens, over the limit of {budget}; "
                    f"shorten it or allow truncation"
                )
            result.append(ids[:budget])
        return result

    def encode(self, question: str, passages: Sequence[str]) -> list[list[int]]:
        prefix, suffix = self.prefix_and_suffix(question)
        budget = self.passage_budget(prefix, suffix)
        return [prefix + ids + suffix for ids in self.encode_passages(passages, budget)]


@dataclass(frozen=True)
class SharedPrefixPrompts:
    """The ranking prompts of one query as ``prefix + tail``; the prefix is the same for every passage."""

    prefix: tuple[int, ...]
    tails: tuple[tuple[int, ...], ...]

    def full(self) -> list[list[int]]:
        """The complete prompts, token for token what :meth:`RankingEncoder.encode` returns."""
        return [list(self.prefix + tail) for tail in self.tails]


def split_prompts(encoder: RankingEncoder, question: str, passages: Sequence[str]) -> SharedPrefixPrompts:
    """Encode like ``encoder.encode`` (same truncation and errors), keeping the shared prefix apart."""
    prefix, suffix = encoder.prefix_and_suffix(question)
    budget = encoder.passage_budget(prefix, suffix)
    tails = tuple(tuple(ids + suffix) for ids in encoder.encode_passages(passages, budget))
    return SharedPrefixPrompts(prefix=tuple(prefix), tails=tails)


@dataclass(frozen=True)
class RankingRequest:
    """What a backend scores: one query's ranking prompts, the answer tokens, and the call's options."""

    prompts: SharedPrefixPrompts
    true_id: int
    false_id: int
    options: ScoringOptions

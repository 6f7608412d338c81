"""RankRAG relevance scores: P("True") for the ranking prompt, read at the last prompt position only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, cast

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from rankrag.errors import PassageTooLongError
from rankrag.model.prompts import PromptTemplates, answer_lead, ranking_parts, resolve_style

Normalization = Literal["binary", "vocab"]
NORMALIZATIONS: tuple[str, ...] = ("binary", "vocab")


@dataclass(frozen=True)
class ScoringOptions:
    """How passages are scored.

    ``normalization="binary"`` (default) is softmax over the two answer tokens, P(True | True or False),
    which uses the whole [0, 1] range even for models that put little mass on either word.
    ``"vocab"`` is P(True) under the full next-token distribution, the paper's literal definition.
    ``prefix_cache`` computes the prompt part shared by all passages of a query once and reuses its
    keys and values for every batch (:mod:`rankrag.model.prefix_cache`; same scores up to float rounding).
    ``coalesce`` lets concurrent async calls on one model share forward passes (:mod:`rankrag.model.batching`).
    """

    batch_size: int = 16
    max_length: int = 2048
    max_passage_tokens: int = 384
    normalization: Normalization = "binary"
    truncate: bool = True
    prefix_cache: bool = True
    coalesce: bool = True


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


def _decoder_and_head(model: PreTrainedModel) -> tuple[torch.nn.Module, torch.nn.Module]:
    return model.get_decoder(), model.get_output_embeddings()


def _head_rows(head: torch.nn.Module, token_ids: Sequence[int] | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    head_weight = cast(torch.Tensor, head.weight)
    weight = head_weight if token_ids is None else head_weight[list(token_ids)]
    bias = getattr(head, "bias", None)
    if bias is not None and token_ids is not None:
        bias = bias[list(token_ids)]
    return weight.float(), None if bias is None else bias.float()


def _softcap(model: PreTrainedModel, logits: torch.Tensor) -> torch.Tensor:
    cap = getattr(model.config, "final_logit_softcapping", None)
    return torch.tanh(logits / cap) * cap if cap else logits


@torch.inference_mode()
def last_hidden_states(model: PreTrainedModel, batch: Sequence[Sequence[int]], pad_id: int) -> torch.Tensor:
    """Hidden state at each prompt's last token. Right padding keeps real positions independent of pads."""
    decoder, _ = _decoder_and_head(model)
    device = next(model.parameters()).device
    lengths = torch.tensor([len(ids) for ids in batch], device=device)
    width = int(lengths.max())
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long, device=device)
    for row, ids in enumerate(batch):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long, device=device)
    attention_mask = (torch.arange(width, device=device)[None, :] < lengths[:, None]).long()
    hidden = decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
    return hidden[torch.arange(len(batch), device=device), lengths - 1]


@torch.inference_mode()
def true_probabilities(
    model: PreTrainedModel, hidden: torch.Tensor, true_id: int, false_id: int, normalization: Normalization
) -> torch.Tensor:
    """P(True) from last-position hidden states, computed in float32 for the rows involved."""
    _, head = _decoder_and_head(model)
    hidden = hidden.float()
    if normalization == "binary":
        weight, bias = _head_rows(head, [true_id, false_id])
        logits = _softcap(model, hidden @ weight.T + (0 if bias is None else bias))
        return torch.softmax(logits, dim=-1)[:, 0]
    if normalization == "vocab":
        weight, bias = _head_rows(head, None)
        logits = _softcap(model, hidden @ weight.T + (0 if bias is None else bias))
        return torch.softmax(logits, dim=-1)[:, true_id]
    raise ValueError(f"unknown normalization {normalization!r}; choose one of {NORMALIZATIONS}")


def length_sorted_batches(encoded: Sequence[Sequence[int]], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first), so little compute goes to padding."""
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def score_encoded(
    model: PreTrainedModel,
    encoded: Sequence[Sequence[int]],
    *,
    true_id: int,
    false_id: int,
    pad_id: int,
    options: ScoringOptions,
) -> list[float]:
    scores = [0.0] * len(encoded)
    for indices in length_sorted_batches(encoded, options.batch_size):
        hidden = last_hidden_states(model, [encoded[i] for i in indices], pad_id)
        probabilities = true_probabilities(model, hidden, true_id, false_id, options.normalization)
        for index, value in zip(indices, probabilities.tolist()):
            scores[index] = float(value)
    return scores

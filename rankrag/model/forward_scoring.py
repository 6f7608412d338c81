"""P("True") from forward passes on local weights, read at the last prompt position only.

One batch loop (:func:`score_rows`) and one padding routine serve both paths: full prompts, or the tails of
prompts behind a shared prefix whose keys and values were computed once (:mod:`rankrag.model.prefix_kv`).
Rows are right padded, so every real token keeps the positions and context it has in its full prompt: scores
with and without the shared prefix agree up to float rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from transformers import PreTrainedModel

from rankrag.model.batching import length_sorted_batches, pass_cost_for, right_padded
from rankrag.model.prefix_kv import PrefixState, cache_argument, compute_prefix, model_device
from rankrag.model.ranking_prompts import SharedPrefixPrompts
from rankrag.model.scoring_options import Normalization, ScoringOptions, check_normalization


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
def last_hidden_states(
    model: PreTrainedModel, batch: Sequence[Sequence[int]], pad_id: int, prefix: PrefixState | None = None
) -> torch.Tensor:
    """Hidden state at each row's last token; with ``prefix``, each row is the tail that follows it."""
    decoder = model.get_decoder()
    device = model_device(model)
    input_ids, lengths, mask = right_padded(batch, pad_id, device)
    if prefix is None:
        output = decoder(input_ids=input_ids, attention_mask=mask.long(), use_cache=False)
    else:
        prefix_mask = torch.ones((len(batch), prefix.length), dtype=torch.bool, device=device)
        # Right padding: every row's real tokens start right after the prefix, at the same positions.
        position_ids = (prefix.length + torch.arange(input_ids.shape[1], device=device)).expand(len(batch), -1)
        output = decoder(
            input_ids=input_ids,
            attention_mask=torch.cat([prefix_mask, mask], dim=1).long(),
            position_ids=position_ids,
            use_cache=True,
            **cache_argument(decoder, prefix.expanded(len(batch))),
        )
    return output.last_hidden_state[torch.arange(len(batch), device=device), lengths - 1]


@torch.inference_mode()
def true_probabilities(
    model: PreTrainedModel, hidden: torch.Tensor, true_id: int, false_id: int, normalization: Normalization
) -> torch.Tensor:
    """P(True) from last-position hidden states, computed in float32 for the rows involved."""
    head = model.get_output_embeddings()
    hidden = hidden.float()
    if check_normalization(normalization) == "binary":
        weight, bias = _head_rows(head, [true_id, false_id])
        logits = _softcap(model, hidden @ weight.T + (0 if bias is None else bias))
        return torch.softmax(logits, dim=-1)[:, 0]
    weight, bias = _head_rows(head, None)
    logits = _softcap(model, hidden @ weight.T + (0 if bias is None else bias))
    return torch.softmax(logits, dim=-1)[:, true_id]


def score_rows(
    model: PreTrainedModel,
    rows: Sequence[Sequence[int]],
    *,
    prefix: PrefixState | None,
    true_id: int,
    false_id: int,
    pad_id: int,
    options: ScoringOptions,
) -> list[float]:
    """P(True) for each row (a full prompt, or a tail behind ``prefix``), in length-sorted batches."""
    scores = [0.0] * len(rows)
    for indices in length_sorted_batches(rows, options.batch_size, pass_cost_for(model_device(model).type)):
        hidden = last_hidden_states(model, [rows[i] for i in indices], pad_id, prefix)
        probabilities = true_probabilities(model, hidden, true_id, false_id, options.normalization)
        for index, value in zip(indices, probabilities.tolist()):
            scores[index] = float(value)
    return scores


def score_prompt_sets(
    model: PreTrainedModel,
    prompt_sets: Sequence[SharedPrefixPrompts],
    *,
    true_id: int,
    false_id: int,
    pad_id: int,
    options: ScoringOptions,
) -> list[list[float]]:
    """P(True) for every prompt of every set, all sets batched together. With ``options.prefix_cache``, sets with
    the same prefix (with the passage-first prompt, every query) share its keys and values; a model whose cache
    cannot be shared across rows scores the full prompts."""
    owners = [
        (number, position) for number, prompts in enumerate(prompt_sets) for position in range(len(prompts.tails))
    ]
    groups: dict[tuple[int, ...] | None, list[tuple[int, int]]] = {}
    for number, position in owners:
        groups.setdefault(prompt_sets[number].prefix if options.prefix_cache else None, []).append((number, position))
    results = [[0.0] * len(prompts.tails) for prompts in prompt_sets]
    for prefix, members in groups.items():
        state = compute_prefix(model, prefix) if prefix is not None else None
        if state is None:
            rows = [prompt_sets[n].prefix + prompt_sets[n].tails[p] for n, p in members]
        else:
            rows = [prompt_sets[n].tails[p] for n, p in members]
        scores = score_rows(
            model, rows, prefix=state, true_id=true_id, false_id=false_id, pad_id=pad_id, options=options
        )
        for (number, position), value in zip(members, scores):
            results[number][position] = value
    return results

"""Grouping token sequences into forward passes: longest first, cut where the padding costs least.

Rows are right padded (:func:`right_padded`). Used by the LLM's scoring (:mod:`rankrag.model.forward_scoring`) and
the embedding model (:mod:`rankrag.model.dense`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

# What one extra forward pass costs, in padded tokens, per device type. On CPU a pass's fixed cost measured 0 to
# 14 tokens while padding costs more than its tokens (attention over the padded width), so short lists split
# into batches of similar length (benchmarks/padding_batches.py). Elsewhere (a GPU: unmeasured here) the
# fewest passes, as before, with the cuts placed where they pad least.
FORWARD_COST_TOKENS = {"cpu": 16}
FEWEST_PASSES = 1 << 40


def pass_cost_for(device_type: str) -> int:
    """:data:`FORWARD_COST_TOKENS` of a device type ("cpu", "cuda", ...)."""
    return FORWARD_COST_TOKENS.get(device_type, FEWEST_PASSES)


def length_sorted_batches(
    encoded: Sequence[Sequence[int]], batch_size: int, forward_cost_tokens: int = FORWARD_COST_TOKENS["cpu"]
) -> list[list[int]]:
    """Indices in batches of at most ``batch_size``, longest first, cut where the padded tokens plus
    ``forward_cost_tokens`` per batch are fewest: passages of similar length share a batch, and a short list of
    mixed lengths (a cascade's few passages) is not padded to its longest passage throughout."""
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    lengths = [len(encoded[i]) for i in order]
    # cost[j]: fewest padded tokens (plus forward costs) for order[:j]; start[j]: where its last batch begins
    cost = [0] * (len(order) + 1)
    start = [0] * (len(order) + 1)
    for end in range(1, len(order) + 1):
        cost[end], start[end] = min(
            (cost[i] + (end - i) * lengths[i] + forward_cost_tokens, i) for i in range(max(0, end - batch_size), end)
        )
    batches: list[list[int]] = []
    end = len(order)
    while end:
        batches.append(order[start[end] : end])
        end = start[end]
    return batches[::-1]


def right_padded(
    rows: Sequence[Sequence[int]], pad_id: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``rows`` as one right-padded id tensor, with each row's length and the mask of its real tokens."""
    lengths = torch.tensor([len(ids) for ids in rows], device=device)
    width = int(lengths.max())
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long, device=device)
    for row, ids in enumerate(rows):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long, device=device)
    mask = torch.arange(width, device=device)[None, :] < lengths[:, None]
    return input_ids, lengths, mask

"""Padding-aware batching of the scoring passes: every passage once, longest first, at most ``batch_size`` a batch,
and cuts that spend fewer padded tokens than fixed runs when lengths are mixed. Pure logic, no model."""

from __future__ import annotations

import pytest

from rankrag.model.batching import length_sorted_batches, pass_cost_for


def _padded(encoded: list[list[int]], batches: list[list[int]]) -> int:
    return sum(max(len(encoded[i]) for i in batch) * len(batch) for batch in batches)


def _rows(*lengths: int) -> list[list[int]]:
    return [[0] * length for length in lengths]


@pytest.mark.parametrize("forward_cost", [0, 64, 256, 10**9])
def test_every_passage_once_longest_first_within_the_batch_size(forward_cost: int) -> None:
    encoded = _rows(*[40 + (7 * i) % 300 for i in range(37)])
    batches = length_sorted_batches(encoded, 16, forward_cost)
    assert sorted(i for batch in batches for i in batch) == list(range(37))
    lengths = [len(encoded[i]) for batch in batches for i in batch]
    assert lengths == sorted(lengths, reverse=True)
    assert all(1 <= len(batch) <= 16 for batch in batches)


def test_a_short_list_of_mixed_lengths_is_not_padded_to_its_longest_passage() -> None:
    encoded = _rows(400, 380, *[150] * 18)  # two long passages, as a cascade's 20 can hold
    batches = length_sorted_batches(encoded, 16, forward_cost_tokens=256)
    assert batches[0] == [0, 1] and len(batches) == 3
    assert _padded(encoded, batches) == 2 * 400 + 18 * 150  # fixed runs of 16 would pad 16 rows to 400: 7,000


def test_equal_lengths_fill_whole_batches_and_a_free_pass_means_no_padding() -> None:
    assert sorted(len(b) for b in length_sorted_batches(_rows(*[100] * 40), 16)) == [8, 16, 16]
    encoded = _rows(300, 200, 100)
    assert _padded(encoded, length_sorted_batches(encoded, 16, forward_cost_tokens=0)) == 600
    assert length_sorted_batches(encoded, 16, forward_cost_tokens=10**9) == [[0, 1, 2]]
    assert length_sorted_batches([], 16) == []


def test_off_the_cpu_scoring_keeps_the_fewest_passes() -> None:
    assert pass_cost_for("cpu") == 16
    encoded = _rows(*[40 + (7 * i) % 300 for i in range(37)])
    batches = length_sorted_batches(encoded, 16, pass_cost_for("cuda"))
    assert len(batches) == 3  # ceil(37 / 16), as before padding-aware cuts
    fixed = [list(range(16)), list(range(16, 32)), list(range(32, 37))]
    by_length = sorted(range(37), key=lambda i: -len(encoded[i]))
    assert _padded(encoded, batches) <= _padded(encoded, [[by_length[i] for i in batch] for batch in fixed])

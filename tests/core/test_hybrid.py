"""Hybrid fusion and the cascade, as pure functions (no model)."""

from __future__ import annotations

import pytest

from rankrag.model.hybrid import HybridWeights, cascade_selection, cheap_scores, combine, hybrid_ranking, min_max


def test_min_max_maps_to_the_unit_interval_and_a_constant_signal_to_ones() -> None:
    assert min_max([2.0, 4.0, 3.0]) == [0.0, 1.0, 0.5]
    assert min_max([7.0, 7.0]) == [1.0, 1.0]
    with pytest.raises(ValueError, match="finite"):
        min_max([1.0, float("nan")])


def test_combine_weights_only_the_signals_present() -> None:
    llm, dense = [0.9, 0.1], [0.0, 1.0]
    assert combine([(1.0, llm), (1.0, dense)], 2) == [0.5, 0.5]
    assert combine([(1.0, llm), (1.0, None)], 2) == [1.0, 0.0]


def test_the_cascade_keeps_the_cheap_top_m_and_ranks_the_rest_below() -> None:
    weights = HybridWeights(llm=1.0, dense=0.5, first_stage=0.0, cascade=2)
    dense, first = [0.1, 0.9, 0.8, 0.2], [1.0, 0.75, 0.5, 0.25]
    cheap = cheap_scores(weights, dense, first, 4)
    selected = cascade_selection(weights.cascade, cheap, range(4))
    assert selected == [1, 2]
    ranked = hybrid_ranking(weights, {1: 0.2, 2: 0.9}, dense, first, cheap)
    assert [position for position, _ in ranked] == [2, 1, 3, 0]
    assert all(score < 0 for _, score in ranked[2:]) and all(0 <= score <= 1 for _, score in ranked[:2])


@pytest.mark.parametrize("values", [(0.0, 0.0, 0.0), (-1.0, 1.0, 0.0), (float("inf"), 0.0, 0.0)])
def test_bad_weights_are_refused(values: tuple[float, float, float]) -> None:
    with pytest.raises(ValueError, match="hybrid weights"):
        HybridWeights(*values)
    with pytest.raises(ValueError, match="cascade"):
        HybridWeights(1.0, 0.0, 0.0, cascade=0)

"""The blank-passage rule and score bookkeeping shared by every scoring path (in-process, served, adapters).

A blank passage (empty or whitespace-only) is never scored by a model, never ranked into a top-k and never
given to the generator; :func:`score` reports :data:`BLANK_PASSAGE_SCORE` for it.
"""

from __future__ import annotations

from collections.abc import Sequence

# What score() reports for an empty or whitespace-only passage, without running the model.
BLANK_PASSAGE_SCORE = 0.0


def is_blank(passage: str) -> bool:
    """Empty or whitespace-only: such a passage is never scored, ranked into a top-k, or given to the generator."""
    return not passage.strip()


def non_blank(passages: Sequence[str]) -> list[str]:
    return [passage for passage in passages if not is_blank(passage)]


def distinct(passages: Sequence[str]) -> list[str]:
    """Each non-blank passage once, in first-seen order: a repeated passage is scored once, so duplicates tie
    exactly (scored in different batches they could differ in the last float bits and lose their input order)."""
    return [passage for passage in dict.fromkeys(passages) if not is_blank(passage)]


def spread(passages: Sequence[str], unique: Sequence[str], scores: Sequence[float]) -> list[float]:
    """The scores of ``unique`` passages back in the order (and multiplicity) of ``passages``; a blank
    passage gets :data:`BLANK_PASSAGE_SCORE`."""
    if len(unique) == len(passages):
        return list(scores)
    by_text = dict(zip(unique, scores))
    return [by_text.get(passage, BLANK_PASSAGE_SCORE) for passage in passages]

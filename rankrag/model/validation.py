"""Checks on user input, shared by every entry point so errors read the same everywhere."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def check_text(text: str, name: str) -> None:
    """Reject strings that are not valid unicode (lone surrogates, e.g. from a bad decode): no tokenizer takes them."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ValueError(
                f"{name} is not valid unicode: it holds an unpaired surrogate at character {error.start}"
            ) from None


def check_query(query: Any, name: str = "query") -> str:
    if not isinstance(query, str):
        raise TypeError(f"{name} must be a string, got {type(query).__name__}")
    if not query.strip():
        raise ValueError(f"{name} is empty or only whitespace; pass the question to rank passages for")
    check_text(query, name)
    return query


def check_passages(passages: Any, name: str = "passages") -> list[str]:
    if isinstance(passages, str):
        raise TypeError(f"{name} must be a list of strings, not a single string")
    try:
        items = list(passages)
    except TypeError as error:
        raise TypeError(f"{name} must be a list of strings, got {type(passages).__name__}") from error
    for index, passage in enumerate(items):
        if not isinstance(passage, str):
            raise TypeError(f"{name}[{index}] must be a string, got {type(passage).__name__}")
        check_text(passage, f"{name}[{index}]")
    return items


def check_positive(value: int | None, name: str) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def check_threshold(threshold: Any, name: str = "score_threshold") -> None:
    """None, or a number: the relevance probability a passage must reach."""
    if threshold is None:
        return
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise TypeError(f"{name} must be a number or None, got {type(threshold).__name__}")
    if not math.isfinite(threshold):
        raise ValueError(f"{name} must be a finite number, got {threshold!r}")


def check_alpha(alpha: Any) -> None:
    """The fusion weight: None (the model's default) or a number in [0, 1]."""
    if alpha is None:
        return
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be between 0 (retriever only) and 1 (LLM only), got {alpha!r}")


def check_top_k(top_k: int | None, name: str = "top_k") -> None:
    check_positive(top_k, name)


def as_list(values: Sequence[float]) -> list[float]:
    return [float(v) for v in values]

"""Result types shared by the core and the framework adapters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ScoredPassage:
    """A passage with its RankRAG score; ``index`` is its position in the input (the retrieval rank)."""

    text: str
    score: float
    index: int
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RAGAnswer:
    """An answer and the passages it was generated from, best first. ``abstained``: no passage reached the
    relevance threshold (or none was given), so ``answer`` is the not-found message and nothing was generated."""

    question: str
    answer: str
    contexts: list[ScoredPassage]
    abstained: bool = False

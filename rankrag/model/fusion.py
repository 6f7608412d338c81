"""Fusion of RankRAG scores with the first-stage (retriever) signal, so reranking never hides the retriever.

``fused = alpha * llm + (1 - alpha) * first_stage``, both on [0, 1]: the LLM score is P(True); the
first-stage score is min-max normalised within the query when scores are given, otherwise the retrieval
rank is turned into ``1 - rank / n``. ``alpha = 1`` is LLM only, ``alpha = 0`` keeps retrieval order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def normalized_first_stage(n: int, first_stage_scores: Sequence[float] | None = None) -> list[float]:
    """First-stage relevance on [0, 1], higher is better; from scores if given, else from input order."""
    if first_stage_scores is None:
        return [1.0 - i / n for i in range(n)] if n else []
    if len(first_stage_scores) != n:
        raise ValueError(f"got {len(first_stage_scores)} first-stage scores for {n} passages")
    if not all(math.isfinite(s) for s in first_stage_scores):
        raise ValueError("first-stage scores must be finite numbers; got NaN or infinity")
    low, high = min(first_stage_scores, default=0.0), max(first_stage_scores, default=0.0)
    if high == low:
        return [1.0] * n
    # Halves keep the span finite even for scores near the float limits (halving is exact otherwise).
    span = high / 2 - low / 2
    return [(float(s) / 2 - low / 2) / span for s in first_stage_scores]


def fuse(llm_scores: Sequence[float], first_stage: Sequence[float], alpha: float) -> list[float]:
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be between 0 (retriever only) and 1 (LLM only), got {alpha}")
    return [alpha * llm + (1.0 - alpha) * first for llm, first in zip(llm_scores, first_stage)]

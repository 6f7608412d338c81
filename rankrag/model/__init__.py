"""The shared model: loading, the process-wide registry, prompts, scoring, generation, fusion."""

from __future__ import annotations

from rankrag.model.rankrag_model import RankRAGModel, clear_registry

__all__ = ["RankRAGModel", "clear_registry"]

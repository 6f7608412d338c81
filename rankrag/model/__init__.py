"""The shared model: loading, the process-wide registry, prompts, scoring, generation, fusion.

``RankRAGModel`` and ``clear_registry`` load on first use (PEP 562): importing a light submodule such
as :mod:`rankrag.model.embedded` or :mod:`rankrag.model.fusion` does not import torch or transformers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rankrag.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from rankrag.model.rankrag_model import RankRAGModel, clear_registry

_EXPORTS = {"RankRAGModel": "rankrag.model.rankrag_model", "clear_registry": "rankrag.model.rankrag_model"}

__all__ = ["RankRAGModel", "clear_registry"]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

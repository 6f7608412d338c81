"""The shared model: loading, the process-wide registry, prompts, scoring, generation, fusion.

``RankRAGModel`` and ``clear_registry`` load on first use (PEP 562): importing a light submodule such
as :mod:`rankrag.model.embedded` or :mod:`rankrag.model.fusion` does not import torch or transformers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rankrag.model.rankrag_model import RankRAGModel, clear_registry

_EXPORTS = {"RankRAGModel": "rankrag.model.rankrag_model", "clear_registry": "rankrag.model.rankrag_model"}

__all__ = ["RankRAGModel", "clear_registry"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""RankRAG: one LLM that reranks retrieved passages and answers from the best ones.

The public names load on first use (PEP 562), so ``import rankrag`` imports neither torch nor
transformers until a model is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rankrag import log_filters  # noqa: F401  # quiets library log noise before anything imports bitsandbytes
from rankrag.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from rankrag.errors import (
        MissingDependencyError,
        ModelNotFoundError,
        PassageTooLongError,
        PromptTooLongError,
        RankRAGError,
        UnsupportedConfigurationError,
    )
    from rankrag.model.generation import Generation, GenerationOptions
    from rankrag.model.pipeline import rankrag_answer
    from rankrag.model.prompts import PromptTemplates
    from rankrag.model.rankrag_model import RankRAGModel, clear_registry
    from rankrag.model.results import RAGAnswer, ScoredPassage
    from rankrag.model.scoring_options import ScoringOptions

# public name -> the module that defines it
_EXPORTS = {
    "Generation": "rankrag.model.generation",
    "GenerationOptions": "rankrag.model.generation",
    "MissingDependencyError": "rankrag.errors",
    "ModelNotFoundError": "rankrag.errors",
    "PassageTooLongError": "rankrag.errors",
    "PromptTooLongError": "rankrag.errors",
    "PromptTemplates": "rankrag.model.prompts",
    "RAGAnswer": "rankrag.model.results",
    "RankRAGError": "rankrag.errors",
    "RankRAGModel": "rankrag.model.rankrag_model",
    "ScoredPassage": "rankrag.model.results",
    "ScoringOptions": "rankrag.model.scoring_options",
    "UnsupportedConfigurationError": "rankrag.errors",
    "clear_registry": "rankrag.model.rankrag_model",
    "rankrag_answer": "rankrag.model.pipeline",
}

__all__ = [
    "Generation",
    "GenerationOptions",
    "MissingDependencyError",
    "ModelNotFoundError",
    "PassageTooLongError",
    "PromptTooLongError",
    "PromptTemplates",
    "RAGAnswer",
    "RankRAGError",
    "RankRAGModel",
    "ScoredPassage",
    "ScoringOptions",
    "UnsupportedConfigurationError",
    "clear_registry",
    "rankrag_answer",
]
__version__ = "0.1.0"

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

"""RankRAG: one LLM that reranks retrieved passages and answers from the best ones."""

from __future__ import annotations

from rankrag.errors import (
    MissingDependencyError,
    ModelNotFoundError,
    PassageTooLongError,
    PromptTooLongError,
    RankRAGError,
    UnsupportedConfigurationError,
)
from rankrag.model.generation import Generation, GenerationOptions
from rankrag.model.rankrag_model import RankRAGModel, clear_registry
from rankrag.model.pipeline import rankrag_answer
from rankrag.model.prompts import PromptTemplates
from rankrag.model.results import RAGAnswer, ScoredPassage
from rankrag.model.scoring import ScoringOptions

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

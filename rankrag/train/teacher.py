"""Soft ranking labels from a teacher: the embedded all-MiniLM-L6-v2 bi-encoder's cosine similarity.

all-MiniLM-L6-v2 was trained on about a billion pairs, MS MARCO among them: supervision this project cannot
get any other way. Its cosine between a question and every candidate of the question's list serves as a soft
label for distillation (``rankrag train --ranking-loss distill``), for all the candidates of a list, not only
the labelled ones.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from rankrag.model.embedded import embedding_model_path
from rankrag.optional import require


class CosineTeacher:
    """Cosine similarity of a sentence-transformers model (the embedded MiniLM by default)."""

    def __init__(self, model: str | os.PathLike[str] | None = None, batch_size: int = 64) -> None:
        sentence_transformers = require("sentence_transformers", "training", "the distillation teacher")
        self.model: Any = sentence_transformers.SentenceTransformer(str(model or embedding_model_path()), device="cpu")
        self.batch_size = batch_size

    def scores(self, question: str, passages: Sequence[str]) -> list[float]:
        """The cosine between ``question`` and each passage."""
        embeddings = self.model.encode(
            [question, *passages], batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return [float(x) for x in embeddings[1:] @ embeddings[0]]

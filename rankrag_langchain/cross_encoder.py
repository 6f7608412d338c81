"""RankRAGCrossEncoder: RankRAG's relevance score behind LangChain's ``BaseCrossEncoder`` interface."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.cross_encoders import BaseCrossEncoder
from pydantic import ConfigDict, Field

from rankrag.integration.ranking import score_pairs
from rankrag_langchain._model import RankRAGModelFields


def _check_pairs(text_pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The pairs as a list, each one a (query, passage) pair; the core checks the strings themselves."""
    if isinstance(text_pairs, str):
        raise TypeError("text_pairs must be a list of (query, passage) pairs, not a single string")
    pairs = list(text_pairs)
    for index, pair in enumerate(pairs):
        if isinstance(pair, str) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise TypeError(f"text_pairs[{index}] must be a (query, passage) pair, got {pair!r:.80}")
    return [(pair[0], pair[1]) for pair in pairs]


class RankRAGCrossEncoder(RankRAGModelFields, BaseCrossEncoder):
    """A LangChain cross encoder whose score is P("True") of RankRAG's ranking prompt.

    A drop-in for ``HuggingFaceCrossEncoder`` in ``CrossEncoderReranker``, so code built on that
    compressor keeps working; :class:`RankRAGReranker` is the richer alternative (score fusion, scores in
    metadata, callbacks). Pairs are grouped by query and each query's passages go through one core
    :meth:`RankRAGModel.score` call, which encodes the query's prompt prefix once.

    A blank passage (empty or whitespace only) scores 0.0 without running the model. A cross encoder
    returns one score per pair and cannot drop pairs, so ``CrossEncoderReranker`` may still keep a blank
    document when fewer than ``top_n`` others are left; :class:`RankRAGReranker` never returns one.

    >>> from langchain_classic.retrievers.document_compressors import CrossEncoderReranker
    >>> compressor = CrossEncoderReranker(model=RankRAGCrossEncoder(), top_n=5)       # embedded SmolLM2
    >>> compressor = CrossEncoderReranker(model=RankRAGCrossEncoder(model=llm.model))  # share a chat model's weights
    """

    model_config = ConfigDict(extra="forbid")

    batch_size: int | None = Field(default=None, gt=0)
    """Passages scored per forward pass; None uses the model's default."""

    def score(self, text_pairs: list[tuple[str, str]]) -> list[float]:
        """P("True") for each (query, passage) pair, in input order (0.0 for a blank passage); ``[]`` for no pairs."""
        return score_pairs(self.rankrag_model, _check_pairs(text_pairs), self.batch_size)

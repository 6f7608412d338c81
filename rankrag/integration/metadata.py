"""The score names both frameworks' rerankers write into the metadata of each document (LangChain) or node
(LlamaIndex) they return, and the names they read a retriever's score from.

Written, on a copy of the input (the input is never modified):

- ``relevance_score``: the final score, the returned order (see :meth:`RankRAGModel.rerank`): the hybrid score
  of P("True"), the dense similarity and the retriever's signal, on [0, 1] for the passages the LLM scored and
  below 0 for those the cascade left to the cheap signals; or, with ``alpha`` set, P("True") fused with the
  retriever's signal. LlamaIndex also sets it as ``NodeWithScore.score``.
- ``llm_score``: P("True") alone; None where the cascade did not send the passage to the LLM.
- ``dense_score``: the dense similarity of query and passage (the retriever's own for ``first_stage="dense"``
  with scores, else the embedding model's cosine); None without a dense signal.
- ``retrieval_score``: the retriever's score of the document as the reranker read it (LangChain: from the
  metadata, see :data:`RETRIEVAL_SCORE_KEYS`; LlamaIndex: ``NodeWithScore.score``), None without one.
- ``retrieval_rank``: the 0-based position of the document in the reranker's input.

LlamaIndex hides these keys from the text it embeds and shows the answering LLM.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from rankrag.model.passages import is_blank
from rankrag.model.ranking_plan import DENSE_SCORE, LLM_SCORE
from rankrag.model.results import ScoredPassage

RELEVANCE_SCORE_KEY = "relevance_score"
LLM_SCORE_KEY = LLM_SCORE
RETRIEVAL_SCORE_KEY = "retrieval_score"
DENSE_SCORE_KEY = DENSE_SCORE
RETRIEVAL_RANK_KEY = "retrieval_rank"
SCORE_KEYS = (RELEVANCE_SCORE_KEY, LLM_SCORE_KEY, DENSE_SCORE_KEY, RETRIEVAL_SCORE_KEY, RETRIEVAL_RANK_KEY)

RETRIEVAL_SCORE_KEYS = ("score", "relevance_score", "similarity_score")
"""Metadata keys read as the retriever's score (higher is better) when a reranker is not told one."""


def score_metadata(passage: ScoredPassage, retrieval_score: float | None) -> dict[str, float | int | None]:
    """The metadata entries for one reranked passage (``passage.index`` is its input position)."""
    return {
        RELEVANCE_SCORE_KEY: passage.score,
        LLM_SCORE_KEY: passage.metadata.get(LLM_SCORE_KEY, passage.score),
        DENSE_SCORE_KEY: passage.metadata.get(DENSE_SCORE_KEY),
        RETRIEVAL_SCORE_KEY: retrieval_score,
        RETRIEVAL_RANK_KEY: passage.index,
    }


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def retrieval_scores(
    texts: Sequence[str], metadatas: Sequence[Mapping[str, Any]], key: str | None
) -> list[float | None] | None:
    """Each passage's retriever score from its metadata (None for a blank passage, which needs none), or None
    to fall back on the retrieval order.

    With ``key`` given every non-blank passage must carry a finite number under it. Without one, the first of
    :data:`RETRIEVAL_SCORE_KEYS` that every non-blank passage carries as a finite number is used, if any.
    """
    scored = [i for i, text in enumerate(texts) if not is_blank(text)]
    if key is not None:
        for index in scored:
            if not _is_number(metadatas[index].get(key)):
                raise ValueError(f"documents[{index}].metadata[{key!r}] must be a finite number (the retrieval score)")
    else:
        key = next((k for k in RETRIEVAL_SCORE_KEYS if all(_is_number(metadatas[i].get(k)) for i in scored)), None)
        if key is None:
            return None
    scores: list[float | None] = [None] * len(texts)
    for index in scored:
        scores[index] = float(metadatas[index][key])
    return scores

"""The dense signal: the embedded MiniLM read with transformers gives sentence-transformers' cosines."""

from __future__ import annotations

import pytest

from rankrag.errors import ModelNotFoundError
from rankrag.model.dense import resolve_embedder
from rankrag.model.embedded import embedding_model_path

QUESTION = "What is the capital of Japan?"
PASSAGES = ["Tokyo is the capital of Japan.", "Kyoto was the imperial capital until 1868.", "Bananas are yellow."]


def test_default_embedder_matches_sentence_transformers() -> None:
    sentence_transformers = pytest.importorskip("sentence_transformers")
    embedder = resolve_embedder("default")
    assert embedder is not None and embedder is resolve_embedder("default")
    got = embedder.similarities(QUESTION, PASSAGES)
    reference = sentence_transformers.SentenceTransformer(str(embedding_model_path()), device="cpu")
    vectors = reference.encode([QUESTION, *PASSAGES], normalize_embeddings=True)
    assert got == pytest.approx((vectors[1:] @ vectors[0]).tolist(), abs=1e-5)
    assert got[0] > got[1] > got[2]


def test_an_embedding_model_that_cannot_be_loaded_is_named(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ModelNotFoundError, match="no/such-embedder"):
        resolve_embedder("no/such-embedder")
    with pytest.raises(ModelNotFoundError, match="not-a-model"):
        resolve_embedder(str(tmp_path / "not-a-model"))
    assert resolve_embedder(None) is None

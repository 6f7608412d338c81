"""The dense signal from a server: an OpenAI-compatible ``/v1/embeddings`` endpoint (vLLM, Text Embeddings
Inference, llama.cpp's server with ``--embeddings``, ...), for :meth:`RankRAGModel.load`/``connect``'s
``embedding_model``.

    model = RankRAGModel.connect(url, model="smollm2", embedding_model=ServedEmbedder(url2, model="all-MiniLM-L6-v2"))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rankrag.served.client import ServerClient
from rankrag.served.errors import ServerResponseError


class ServedEmbedder:
    """Cosine similarities of embeddings that a server computes; one request per :meth:`similarities` call (the
    query and its passages). ``timeout``, ``api_key`` and ``max_attempts`` as in :meth:`RankRAGModel.connect`."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_attempts: int = 4,
    ) -> None:
        if not isinstance(model, str) or not model.strip():
            raise ValueError(f"model must name the served embedding model, got {model!r}")
        self.client = ServerClient(base_url, api_key=api_key, timeout=timeout, max_attempts=max_attempts)
        self.model = model

    @property
    def name(self) -> str:
        return self.model

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One embedding per text, in order."""
        body = self.client.run(
            self.client.request("POST", "/v1/embeddings", {"model": self.model, "input": list(texts)})
        )
        return _vectors(body, len(texts), self.client.url("/v1/embeddings"), self.model)

    def similarities(self, query: str, passages: Sequence[str]) -> list[float]:
        """Cosine similarity of ``query`` with each passage."""
        if not passages:
            return []
        first, *rest = self.embed([query, *passages])
        return [_cosine(first, vector) for vector in rest]

    def close(self) -> None:
        self.client.close()


def _vectors(body: Any, count: int, url: str, model: str) -> list[list[float]]:
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list) or len(data) != count:
        got = f"{len(data)} embeddings" if isinstance(data, list) else "no 'data' list"
        raise ServerResponseError(f"the embeddings server at {url} answered {got} for {count} texts (model {model!r})")
    ordered = sorted(data, key=lambda item: item.get("index", 0) if isinstance(item, dict) else 0)
    vectors = []
    for item in ordered:
        vector = item.get("embedding") if isinstance(item, dict) else None
        if not isinstance(vector, list) or not vector or not all(isinstance(v, (int, float)) for v in vector):
            raise ServerResponseError(f"the embeddings server at {url} answered an entry without a numeric 'embedding'")
        vectors.append([float(v) for v in vector])
    if len({len(v) for v in vectors}) != 1:
        raise ServerResponseError(f"the embeddings server at {url} answered embeddings of different sizes")
    return vectors


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    norms = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return sum(x * y for x, y in zip(a, b)) / norms if norms > 0 else 0.0

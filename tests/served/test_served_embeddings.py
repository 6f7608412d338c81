"""ServedEmbedder: the dense signal from an OpenAI-compatible /v1/embeddings endpoint.

The endpoint is an HTTP server on 127.0.0.1 that embeds with the real embedded all-MiniLM-L6-v2, so the served
cosines must equal the in-process ones; a served RankRAG model then ranks with them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from served_helpers import FakeRequest, FakeResponse, FakeServer

from rankrag import RankRAGModel
from rankrag.model.dense import TransformerEmbedder, resolve_embedder
from rankrag.served.embeddings import ServedEmbedder
from rankrag.served.errors import ServerResponseError

QUERY = "What is the capital of Japan?"
PASSAGES = ["Tokyo is the capital of Japan.", "Paris is the capital of France.", "Sushi is a Japanese dish."]


@pytest.fixture(scope="module")
def minilm() -> TransformerEmbedder:
    embedder = resolve_embedder("default")
    assert isinstance(embedder, TransformerEmbedder)
    return embedder


@pytest.fixture
def embedding_server(minilm: TransformerEmbedder) -> Iterator[FakeServer]:
    server = FakeServer(models=("all-MiniLM-L6-v2",))

    def embed(request: FakeRequest) -> FakeResponse:
        vectors = minilm.encode(request.body["input"]).tolist()
        data = [{"object": "embedding", "index": i, "embedding": v} for i, v in reversed(list(enumerate(vectors)))]
        return FakeResponse(body={"object": "list", "data": data, "model": request.body["model"]})

    server.embeddings = embed
    yield server
    server.close()


def test_served_cosines_equal_the_in_process_ones(embedding_server: FakeServer, minilm: TransformerEmbedder) -> None:
    embedder = ServedEmbedder(embedding_server.url, model="all-MiniLM-L6-v2")
    try:
        assert embedder.similarities(QUERY, PASSAGES) == pytest.approx(minilm.similarities(QUERY, PASSAGES), abs=1e-5)
        assert embedder.similarities(QUERY, []) == []
    finally:
        embedder.close()
    request = embedding_server.requests[-1]
    assert request.path == "/v1/embeddings"
    assert request.body == {"model": "all-MiniLM-L6-v2", "input": [QUERY, *PASSAGES]}


def test_a_served_model_ranks_with_the_served_dense_signal(
    embedding_server: FakeServer, fake_server: FakeServer
) -> None:
    embedder = ServedEmbedder(embedding_server.url, model="all-MiniLM-L6-v2")
    model = RankRAGModel.connect(fake_server.url, model=fake_server.models[0], embedding_model=embedder)
    try:
        ranked = model.rerank(QUERY, PASSAGES)
        served = embedder.similarities(QUERY, PASSAGES)
        assert {p.index: p.metadata["dense_score"] for p in ranked} == pytest.approx(dict(enumerate(served)))
        assert any(r.path == "/v1/embeddings" for r in embedding_server.requests)
    finally:
        model.close()
        embedder.close()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"data": []}, "0 embeddings for 2 texts"),
        ({"nothing": 1}, "no 'data' list"),
        ({"data": [{"index": 0, "embedding": [1.0]}, {"index": 1, "embedding": "x"}]}, "without a numeric"),
        ({"data": [{"index": 0, "embedding": [1.0]}, {"index": 1, "embedding": [1.0, 2.0]}]}, "different sizes"),
    ],
)
def test_malformed_answers_are_named(embedding_server: FakeServer, body: object, message: str) -> None:
    embedding_server.embeddings = lambda request: FakeResponse(body=body)
    embedder = ServedEmbedder(embedding_server.url, model="all-MiniLM-L6-v2")
    try:
        with pytest.raises(ServerResponseError, match=message):
            embedder.similarities(QUERY, PASSAGES[:1])
    finally:
        embedder.close()


def test_a_missing_endpoint_names_the_server(embedding_server: FakeServer) -> None:
    embedding_server.embeddings = None
    embedder = ServedEmbedder(embedding_server.url, model="all-MiniLM-L6-v2", max_attempts=1)
    try:
        with pytest.raises(ServerResponseError, match="404"):
            embedder.similarities(QUERY, PASSAGES)
    finally:
        embedder.close()

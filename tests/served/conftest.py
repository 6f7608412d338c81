"""Fixtures for the served backend: a real llama-cpp-python server on the embedded GGUF (session-wide) and a
scripted fake server per test. The helpers live in served_helpers.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from served_helpers import ALIAS, FIXTURES, FakeServer, LlamaServer, read_jsonl, start_llama_server


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    server = start_llama_server(tmp_path_factory.mktemp("llama-server"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def served(llama_server: LlamaServer):  # type: ignore[no-untyped-def]
    """The embedded GGUF served by llama-cpp-python, behind the RankRAGModel interface."""
    from rankrag import RankRAGModel

    model = RankRAGModel.connect(llama_server.url, model=ALIAS, context_window=2048)
    yield model
    model.close()


@pytest.fixture(scope="session")
def squad_passages() -> list[dict[str, Any]]:
    return read_jsonl(FIXTURES / "squad_passages.jsonl")


@pytest.fixture
def fake_server() -> Iterator[FakeServer]:
    server = FakeServer()
    try:
        yield server
    finally:
        server.close()

"""The served backend: RankRAG's interface on a model behind an OpenAI-compatible HTTP server.

>>> from rankrag import RankRAGModel
>>> model = RankRAGModel.connect("http://127.0.0.1:8000", model="smollm2")   # doctest: +SKIP
>>> model.rerank("Who wrote Hamlet?", ["Hamlet is a tragedy by Shakespeare.", "Paris is in France."])  # doctest: +SKIP

See docs/serving.md for the server commands (llama.cpp, vLLM).
"""

from __future__ import annotations

from rankrag.served.errors import (
    ServedModelNotFoundError,
    ServerDisconnectedError,
    ServerError,
    ServerResponseError,
    ServerTimeoutError,
    ServerUnavailableError,
    TokenizerMismatchError,
)
from rankrag.served.model import ServedRankRAGModel, ServerInfo, connect

__all__ = [
    "ServedModelNotFoundError",
    "ServedRankRAGModel",
    "ServerDisconnectedError",
    "ServerError",
    "ServerInfo",
    "ServerResponseError",
    "ServerTimeoutError",
    "ServerUnavailableError",
    "TokenizerMismatchError",
    "connect",
]

"""The served backend: RankRAG's interface on a model behind an OpenAI-compatible HTTP server.

>>> from rankrag import RankRAGModel
>>> model = RankRAGModel.connect("http://127.0.0.1:8000", model="smollm2")   # doctest: +SKIP
>>> model.rerank("Who wrote Hamlet?", ["Hamlet is a tragedy by Shakespeare.", "Paris is in France."])  # doctest: +SKIP

``rankrag serve`` (:mod:`rankrag.served.launch`) starts llama.cpp's server on the embedded or an exported GGUF.
See docs/serving.md for the server commands (llama.cpp, vLLM).

The public names load on first use (PEP 562): importing :mod:`rankrag.served.launch` (what ``rankrag serve`` and
the server process it starts import) loads neither transformers nor torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rankrag.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from rankrag.model.rankrag_model import ServedRankRAGModel, connect
    from rankrag.served.errors import (
        ServedModelNotFoundError,
        ServerDisconnectedError,
        ServerError,
        ServerLaunchError,
        ServerResponseError,
        ServerTimeoutError,
        ServerUnavailableError,
        TokenizerMismatchError,
    )
    from rankrag.served.wire import ServerInfo

_EXPORTS = {
    "ServedModelNotFoundError": "rankrag.served.errors",
    "ServedRankRAGModel": "rankrag.model.rankrag_model",
    "ServerDisconnectedError": "rankrag.served.errors",
    "ServerError": "rankrag.served.errors",
    "ServerInfo": "rankrag.served.wire",
    "ServerLaunchError": "rankrag.served.errors",
    "ServerResponseError": "rankrag.served.errors",
    "ServerTimeoutError": "rankrag.served.errors",
    "ServerUnavailableError": "rankrag.served.errors",
    "TokenizerMismatchError": "rankrag.served.errors",
    "connect": "rankrag.model.rankrag_model",
}

__all__ = [
    "ServedModelNotFoundError",
    "ServedRankRAGModel",
    "ServerDisconnectedError",
    "ServerError",
    "ServerInfo",
    "ServerLaunchError",
    "ServerResponseError",
    "ServerTimeoutError",
    "ServerUnavailableError",
    "TokenizerMismatchError",
    "connect",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

"""Errors of the served backend. Each names the server URL and, where possible, the fix."""

from __future__ import annotations

from rankrag.errors import ModelNotFoundError, RankRAGError


class ServerError(RankRAGError):
    """Something went wrong talking to a model server."""


class ServerUnavailableError(ServerError, ConnectionError):
    """The server could not be reached, or closed the connection (after the bounded retries)."""


class ServerDisconnectedError(ServerUnavailableError):
    """The server went away in the middle of an answer: it closed the connection before a complete answer (a stream
    that ended early, a request it never answered, e.g. because it crashed on it)."""


class ServerTimeoutError(ServerError, TimeoutError):
    """The server did not answer within the timeout."""


class ServerResponseError(ServerError, ValueError):
    """The server answered with an error status, or with a response RankRAG cannot use
    (not JSON, truncated, no logprobs, missing fields)."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ServedModelNotFoundError(ServerError, ModelNotFoundError):
    """The server does not serve the model name given to :meth:`RankRAGModel.connect`."""


class TokenizerMismatchError(ServerError, ValueError):
    """The client-side tokenizer does not tokenize like the server's model, or a prompt the server only takes
    as text would not reach it as the exact token ids RankRAG scores in-process (``strict_tokens=True``)."""


class ServerLaunchError(ServerError):
    """``rankrag serve`` could not start a working model server (it exited, crashed on the probe request, or did not
    answer in time)."""

"""HTTP transport to a model server: one private event loop thread, one pooled ``httpx.AsyncClient``, a
semaphore bounding the requests in flight, bounded retries with exponential backoff, and SSE streaming.

Every request runs on the client's own event loop, whichever thread or event loop the caller is on: sync
callers block on a future (:meth:`ServerClient.run`), async callers await it (:meth:`ServerClient.call`),
so all callers share one connection pool and one bound on concurrency, and cancelling an awaiting task
cancels its request.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import math
import queue
import random
import re
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, TypeVar

from rankrag.errors import PromptTooLongError
from rankrag.optional import require
from rankrag.served.errors import (
    ServerDisconnectedError,
    ServerError,
    ServerResponseError,
    ServerTimeoutError,
    ServerUnavailableError,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
SERVING_DOCS = "the Troubleshooting section of the rankrag serving docs (docs/serving.md in its source repository)"
_CONTEXT_PATTERNS = (
    re.compile(r"maximum context length is (\d+)", re.IGNORECASE),  # llama-cpp-python, vLLM, OpenAI
    re.compile(r"context window of (\d+)", re.IGNORECASE),
    re.compile(r"exceeds? the available context size", re.IGNORECASE),  # llama.cpp's llama-server
)


def normalize_base_url(base_url: str) -> str:
    """``http(s)://host:port`` without a trailing slash or ``/v1`` (the client adds the paths)."""
    if not isinstance(base_url, str) or not re.match(r"https?://[^/\s]+", base_url.strip()):
        raise ValueError(
            f"base_url must be an http:// or https:// URL such as 'http://127.0.0.1:8000', got {base_url!r}"
        )
    url = base_url.strip().rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def error_message(body: str) -> str:
    """The human part of an error body (OpenAI ``{"error": {"message"}}``, FastAPI ``{"detail"}``, ...)."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:300]
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            for key in ("message", "detail", "msg"):
                if key in error:
                    return str(error[key])[:500]
        if "detail" in data:
            return str(data["detail"])[:500]
        return str(error)[:500]
    return str(data)[:300]


def _invalid_request(body: str) -> bool:
    """A request the server rejected as invalid, whatever the status says (llama-cpp-python answers HTTP 500
    to a body that fails validation): retrying cannot help."""
    return "validation error" in body[:2000].lower()


class _LoopThread:
    """An asyncio event loop running forever in a daemon thread."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        if self.loop.is_closed():
            coro.close()
            raise ServerError("this served model has been closed; connect again")
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        if threading.current_thread() is not self.thread:
            self.thread.join(timeout=5)
            if not self.thread.is_alive():
                self.loop.close()


class _State:
    """What the finalizer closes: kept apart from :class:`ServerClient` so the finalizer holds no reference to it."""

    def __init__(self, loop: _LoopThread) -> None:
        self.loop = loop
        self.http: Any = None
        self.semaphore: asyncio.Semaphore | None = None

    def close(self) -> None:
        if self.loop.loop.is_closed():
            return
        if self.http is not None:
            try:
                asyncio.run_coroutine_threadsafe(self.http.aclose(), self.loop.loop).result(timeout=5)
            except Exception:  # noqa: BLE001 - closing on the way out; nothing to report to
                pass
        self.loop.stop()


class ServerClient:
    """Talks to one OpenAI-compatible server. ``timeout``: seconds per connect/read/write (a non-streamed
    completion must finish within it); ``max_concurrency``: most requests in flight (and pooled connections);
    ``max_attempts``: tries per request on connection errors and HTTP 429/5xx, ``backoff_s`` doubling between."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 60.0,
        max_concurrency: int = 16,
        max_attempts: int = 4,
        backoff_s: float = 0.25,
        max_backoff_s: float = 4.0,
        api_key: str | None = None,
    ) -> None:
        self.httpx = require("httpx", "server", "the served RankRAG backend (RankRAGModel.connect)")
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not (timeout > 0 and math.isfinite(timeout))
        ):
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1:
            raise ValueError(f"max_concurrency must be a positive integer, got {max_concurrency!r}")
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise ValueError(f"max_attempts must be a positive integer, got {max_attempts!r}")
        self.base_url = normalize_base_url(base_url)
        self.timeout = float(timeout)
        self.max_concurrency = max_concurrency
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.learned_context_window: int | None = None
        self.retries = 0  # requests retried, for diagnostics
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._state = _State(_LoopThread(name=f"rankrag-served {self.base_url}"))
        self._finalizer = weakref.finalize(self, self._state.close)

    # ------------------------------------------------------------ running code
    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the client's loop and wait for it (from any thread but the loop's own)."""
        if threading.current_thread() is self._state.loop.thread:
            coro.close()
            raise RuntimeError("a blocking served-model call was made from the served client's own event loop")
        future = self._state.loop.submit(coro)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # e.g. KeyboardInterrupt: stop the request too
            raise

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` run on the client's loop, from any event loop; cancelling the caller cancels it."""
        return await asyncio.wrap_future(self._state.loop.submit(coro))

    def iterate(self, make: Callable[[], AsyncIterator[T]]) -> Iterator[T]:
        """A blocking iterator over the async iterator ``make()`` run on the client's loop. Stopping early
        (break, close) cancels it, which closes its HTTP stream."""
        items: queue.Queue[tuple[str, Any]] = queue.Queue()

        async def pump() -> None:
            try:
                async for item in make():
                    items.put(("item", item))
            except asyncio.CancelledError:
                items.put(("error", ServerError("the stream was cancelled")))
                raise
            except BaseException as error:  # noqa: BLE001 - handed to the consuming thread
                items.put(("error", error))
            else:
                items.put(("end", None))

        future = self._state.loop.submit(pump())
        try:
            while True:
                kind, value = items.get()
                if kind == "item":
                    yield value
                elif kind == "end":
                    return
                else:
                    raise value
        finally:
            future.cancel()

    def close(self) -> None:
        """Close the connections and stop the loop thread (also done when the client is garbage collected)."""
        self._finalizer()

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    # ------------------------------------------------------------------- HTTP
    def url(self, path: str) -> str:
        return self.base_url + path

    def _http(self) -> Any:
        state = self._state
        if state.http is None:
            httpx = self.httpx
            state.http = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
                limits=httpx.Limits(
                    max_connections=self.max_concurrency, max_keepalive_connections=self.max_concurrency
                ),
                headers=self._headers,
            )
            state.semaphore = asyncio.Semaphore(self.max_concurrency)
        return state.http

    def _delay(self, attempt: int, response: Any = None) -> float:
        delay = min(self.max_backoff_s, self.backoff_s * (2**attempt))
        retry_after = None if response is None else response.headers.get("retry-after")
        if retry_after:
            try:
                delay = min(self.max_backoff_s, max(delay, float(retry_after)))
            except ValueError:
                pass
        return delay * (1 + 0.1 * random.random())

    async def _back_off(self, attempt: int, response: Any = None) -> None:
        """Count a retry and wait before the next try (``response``: the one that asked for it, if any)."""
        self.retries += 1
        await asyncio.sleep(self._delay(attempt, response))

    async def _retry_or_raise(
        self, url: str, error: Exception, attempt: int, attempts: int, closed: Exception | None
    ) -> None:
        """After a transport ``error`` on try ``attempt`` of ``attempts``: back off when another try may help (a
        connect timeout or a failed connection, not on the last try), else raise the error that ends the request
        (``closed``: as for :meth:`_unreachable`)."""
        httpx = self.httpx
        last = attempt == attempts - 1
        if isinstance(error, httpx.TimeoutException):
            if last or not isinstance(error, httpx.ConnectTimeout):
                raise self._timed_out(url, error) from error
        elif last:
            raise self._unreachable(url, error, attempts, closed) from error
        await self._back_off(attempt)

    def _closed_by_server(self, error: Exception) -> bool:
        """Whether the server accepted the connection and then closed or broke it (it answered nothing, or half)."""
        httpx = self.httpx
        return isinstance(error, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError))

    def _unreachable(
        self, url: str, error: Exception, attempts: int, closed: Exception | None = None
    ) -> ServerUnavailableError:
        """The error for a request whose every attempt failed in transport; ``closed``: the first attempt's error
        where the server accepted the connection and then closed it (it went away mid-request)."""
        tries = f"{attempts} attempt{'s' if attempts > 1 else ''}"
        last = f"{type(error).__name__}: {error or 'no detail'}"
        if closed is not None:
            first = f"{type(closed).__name__}: {closed or 'no detail'}"
            if isinstance(error, self.httpx.ConnectError):
                return ServerDisconnectedError(
                    f"the model server at {url} closed the connection without answering ({first}) and then refused "
                    f"new connections ({last}; {tries}): it has probably crashed on this request. llama-cpp-python's "
                    f"server does this on CPUs with AMX on the first prompt of more than one token; `rankrag serve` "
                    f"starts it with settings that work. See {SERVING_DOCS}"
                )
            return ServerDisconnectedError(
                f"the connection to the model server at {url} failed: the server closed the connection without a "
                f"complete answer ({last}; {tries}); it may have crashed or sent a truncated response. See {SERVING_DOCS}"
            )
        if isinstance(error, self.httpx.ConnectError):
            return ServerUnavailableError(
                f"cannot reach the model server at {url} ({last}; {tries}); is the server running and is the URL "
                f"right? (`rankrag serve` starts one: {SERVING_DOCS})"
            )
        return ServerUnavailableError(
            f"the connection to the model server at {url} failed ({last}; {tries}); the server may have crashed or "
            f"sent a truncated response. See {SERVING_DOCS}"
        )

    def _timed_out(self, url: str, error: Exception) -> ServerTimeoutError:
        return ServerTimeoutError(
            f"the model server at {url} did not answer within {self.timeout:g} s ({type(error).__name__}); it may "
            f"be overloaded or stuck; connect(timeout=...) sets the limit"
        )

    def status_error(self, url: str, status: int, body: str) -> Exception:
        message = error_message(body)
        for pattern in _CONTEXT_PATTERNS:
            match = pattern.search(message)
            if match:
                if match.groups():
                    self.learned_context_window = int(match.group(1))
                return PromptTooLongError(f"the model server at {url} rejected the prompt as too long: {message}")
        if status in (401, 403):
            return ServerResponseError(
                f"the model server at {url} refused the request (HTTP {status}: {message}); check api_key",
                status_code=status,
            )
        return ServerResponseError(f"the model server at {url} answered HTTP {status}: {message}", status_code=status)

    def _decode(self, url: str, response: Any) -> Any:
        if response.status_code >= 400:
            raise self.status_error(url, response.status_code, response.text)
        try:
            return response.json()
        except ValueError as error:
            raise ServerResponseError(
                f"malformed response from the model server at {url}: not JSON ({error}); it starts with "
                f"{response.text[:200]!r}"
            ) from error

    async def request(self, method: str, path: str, payload: Any = None, *, retry: bool = True) -> Any:
        """One JSON request (retried on connection errors and 429/5xx when ``retry``); the decoded body."""
        httpx = self.httpx
        url = self.url(path)
        http = self._http()
        attempts = self.max_attempts if retry else 1
        closed: Exception | None = None  # the first attempt the server accepted and then closed
        assert self._state.semaphore is not None
        async with self._state.semaphore:
            for attempt in range(attempts):
                last = attempt == attempts - 1
                try:
                    response = await http.request(method, url, json=payload)
                except httpx.TransportError as error:  # refused, reset, closed mid-response, timed out, ...
                    if closed is None and self._closed_by_server(error):
                        closed = error
                    await self._retry_or_raise(url, error, attempt, attempts, closed)
                    continue
                if response.status_code in RETRY_STATUSES and not last and not _invalid_request(response.text):
                    logger.debug("HTTP %s from %s; retrying", response.status_code, url)
                    await self._back_off(attempt, response)
                    continue
                return self._decode(url, response)
        raise AssertionError("unreachable")  # pragma: no cover

    async def stream(self, path: str, payload: Any) -> AsyncIterator[dict[str, Any]]:
        """Server-sent events of a streamed request, decoded. Retried only before the first event arrives;
        a stream that breaks or ends before ``[DONE]`` (or a final ``finish_reason``) raises
        :class:`ServerDisconnectedError`."""
        httpx = self.httpx
        url = self.url(path)
        http = self._http()
        closed: Exception | None = None  # the first attempt the server accepted and then closed
        assert self._state.semaphore is not None
        async with self._state.semaphore:
            for attempt in range(self.max_attempts):
                last = attempt == self.max_attempts - 1
                events = 0
                try:
                    async with http.stream("POST", url, json=payload) as response:
                        if response.status_code in RETRY_STATUSES and not last:
                            await response.aread()
                            await self._back_off(attempt, response)
                            continue
                        if response.status_code >= 400:
                            body = (await response.aread()).decode("utf-8", errors="replace")
                            raise self.status_error(url, response.status_code, body)
                        finished = False
                        async for line in response.aiter_lines():
                            if not line.startswith("data:"):
                                continue  # comments (pings), event names, blank separators
                            data = line[len("data:") :].strip()
                            if data == "[DONE]":
                                return
                            try:
                                event = json.loads(data)
                            except ValueError as error:
                                raise ServerResponseError(
                                    f"malformed event in the stream from {url}: {data[:200]!r}"
                                ) from error
                            if not isinstance(event, dict):
                                raise ServerResponseError(f"malformed event in the stream from {url}: {data[:200]!r}")
                            if "error" in event:
                                raise ServerResponseError(
                                    f"the model server at {url} failed mid-stream: {error_message(data)}"
                                )
                            events += 1
                            choices = event.get("choices") or [{}]
                            finished = finished or bool(
                                isinstance(choices[0], dict) and choices[0].get("finish_reason")
                            )
                            yield event
                        if not finished:
                            raise ServerDisconnectedError(
                                f"the stream from the model server at {url} ended after {events} events without "
                                f"finishing; the server may have crashed"
                            )
                        return
                except httpx.TransportError as error:
                    if events and not isinstance(error, httpx.TimeoutException):
                        raise ServerDisconnectedError(
                            f"the model server at {url} dropped the stream after {events} events "
                            f"({type(error).__name__}); the server may have crashed"
                        ) from error
                    if closed is None and self._closed_by_server(error):
                        closed = error
                    await self._retry_or_raise(url, error, attempt, self.max_attempts, closed)

"""Helpers for the served-backend tests: start a real llama-cpp-python server on the embedded GGUF (with the
launcher `rankrag serve` uses), and a scripted fake OpenAI-style server (standard library only) for the error paths
a real server rarely shows."""

from __future__ import annotations

import importlib.util
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from rankrag.served.errors import ServerLaunchError
from rankrag.served.launch import (
    ExtraBuffers,
    LaunchedServer,
    ServeOptions,
    launch,
    resolve_answerer_model,
    resolve_model,
)

FIXTURES = Path(__file__).parent.parent / "fixtures"
ALIAS = "smollm2"
SERVER_START_S = 300  # generous: this machine may be busy


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# --------------------------------------------------------------------------- llama-cpp-python
LlamaServer = LaunchedServer  # a running llama-cpp-python server, started as `rankrag serve` starts it

# "auto" until a start has shown whether llama.cpp's extra CPU buffer types work here; later starts reuse that, so
# only the first one pays for a crash and a restart.
_extra_buffers: ExtraBuffers = "auto"


def start_llama_server(log_dir: Path, *, n_ctx: int = 2048, model_path: Path | None = None) -> LaunchedServer:
    """llama-cpp-python's server on ``model_path`` (default: the embedded GGUF) on a free port, launched and probed
    by :func:`rankrag.served.launch.launch` (what `rankrag serve` runs); returns once it has answered the probe."""
    global _extra_buffers
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip(
            'llama-cpp-python is not installed (pip install "rankrag[server]"); the served tests need its server'
        )
    port = free_port()
    served = resolve_model(model_path)
    options = ServeOptions(
        model=served,
        alias=ALIAS,
        port=port,
        n_ctx=n_ctx,
        threads=2,
        start_timeout_s=SERVER_START_S,
        answerer_model=resolve_answerer_model(served),
    )
    try:
        server = launch(options, extra_buffers=_extra_buffers, log=log_dir / f"llama-server-{port}.log", say=print)
    except ServerLaunchError as error:
        pytest.fail(str(error))
    _extra_buffers = "on" if server.extra_buffer_types else "off"
    return server


# ---------------------------------------------------------------------------------- fake server
Handler = Callable[["FakeRequest"], "FakeResponse"]


@dataclass
class FakeRequest:
    method: str
    path: str
    body: Any


@dataclass
class FakeResponse:
    status: int = 200
    body: Any = None  # JSON-encoded unless raw
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    sse: list[str] | None = None  # data lines to stream
    drop_after_sse: bool = False  # close the connection mid-stream instead of finishing
    truncate: bool = False  # announce a longer body than is sent, then close
    delay_s: float = 0.0
    crash: bool = False  # close the connection without answering and stop listening, as a crashed server does


def logprobs_body(table: dict[str, float], sampled: str | None = None, text: str | None = None) -> dict[str, Any]:
    """A legacy-layout completion whose first token has these top logprobs (keys are token texts)."""
    chosen = sampled if sampled is not None else max(table, key=table.__getitem__)
    value = table.get(chosen, -5.0)
    return {
        "choices": [
            {
                "text": chosen if text is None else text,
                "index": 0,
                "finish_reason": "length",
                "logprobs": {
                    "tokens": [chosen],
                    "token_logprobs": [value],
                    "top_logprobs": [table],
                    "text_offset": [0],
                },
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 1},
    }


def default_completion(request: FakeRequest) -> FakeResponse:
    """True -0.5 / False -1.5 at the top; a logit_bias on one token makes it the sampled one (raw logprobs)."""
    table = {"True": -0.5, "False": -1.5, "Yes": -2.0}
    bias = (request.body or {}).get("logit_bias") or {}
    from rankrag.served.tokenizers import embedded_tokenizer

    tokenizer = embedded_tokenizer()
    biased = [tokenizer.decode([int(k)]) for k in bias]
    sampled = biased[0] if len(biased) == 1 else None
    return FakeResponse(body=logprobs_body(table, sampled))


class FakeServer:
    """An OpenAI-style server whose /v1/completions answers come from ``self.completions`` (replaceable)."""

    def __init__(self, models: tuple[str, ...] = ("smollm2-fake",)) -> None:
        self.models = models
        self.completions: Handler = default_completion
        self.embeddings: Handler | None = None
        self.requests: list[FakeRequest] = []
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, method: str) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                request = FakeRequest(method, self.path, body)
                fake.requests.append(request)
                if self.path == "/v1/models":
                    response = FakeResponse(
                        body={
                            "object": "list",
                            "data": [{"id": m, "object": "model", "owned_by": "fake"} for m in fake.models],
                        }
                    )
                elif self.path == "/v1/embeddings" and fake.embeddings is not None:
                    response = fake.embeddings(request)
                elif self.path == "/v1/completions":
                    response = fake.completions(request)
                else:
                    response = FakeResponse(status=404, body={"detail": "Not Found"})
                time.sleep(response.delay_s)
                if response.crash:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    fake.httpd.shutdown()  # serve_forever runs on another thread: this returns once it stops
                    fake.httpd.server_close()
                    return
                self._send(response)

            def _send(self, response: FakeResponse) -> None:
                try:
                    if response.sse is not None:
                        self.send_response(response.status)
                        self.send_header("content-type", "text/event-stream")
                        self.send_header("transfer-encoding", "chunked")
                        self.end_headers()
                        for line in response.sse:
                            chunk = f"data: {line}\n\n".encode()
                            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                            self.wfile.flush()
                            time.sleep(0.01)
                        if response.drop_after_sse:
                            self.close_connection = True
                            self.connection.shutdown(socket.SHUT_RDWR)
                            return
                        self.wfile.write(b"0\r\n\r\n")
                        return
                    payload = response.raw if response.raw is not None else json.dumps(response.body).encode()
                    self.send_response(response.status)
                    self.send_header("content-type", "application/json")
                    for key, value in response.headers.items():
                        self.send_header(key, value)
                    self.send_header("content-length", str(len(payload) + (100 if response.truncate else 0)))
                    self.end_headers()
                    self.wfile.write(payload)
                    if response.truncate:
                        self.wfile.flush()
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self) -> None:  # noqa: N802
                self._answer("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._answer("POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def completion_requests(self) -> list[FakeRequest]:
        return [r for r in self.requests if r.path == "/v1/completions"]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

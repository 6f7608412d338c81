"""``rankrag serve``: llama.cpp's server (llama-cpp-python's ``llama_cpp.server``) on a GGUF, checked with a real
request before it is called ready.

A server that starts is not yet a server that works: on a VM whose CPU advertises AMX, llama.cpp's AMX kernels end
the process with a segmentation fault on the first batch of more than one token, after ``/v1/models`` has answered.
So :func:`launch` sends a multi-token completion (the probe) once the server answers, and when the probe crashes
the server (with ``extra_buffers="auto"``, the default) restarts it with llama.cpp's extra CPU buffer types (AMX,
weight repacking) switched off, which runs the same model on llama.cpp's plain CPU kernels, and says so in one line.

:func:`launch` returns the running server (the tests use it); :func:`serve` is the command: launch, print how to
connect, then wait like a server until Ctrl-C, passing SIGINT, SIGTERM and SIGHUP on to the server process.
This module imports neither transformers nor torch.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Literal

from rankrag.errors import MissingDependencyError, ModelNotFoundError
from rankrag.served.errors import ServerLaunchError
from rankrag.served.llama_server import NO_EXTRA_BUFFER_TYPES

ExtraBuffers = Literal["auto", "on", "off"]
EXTRA_BUFFERS: tuple[ExtraBuffers, ...] = ("auto", "on", "off")

DEFAULT_ALIAS = "smollm2"
ANSWERER_ALIAS = "answerer"  # the served name of the answerer role (rankrag.served.handshake.resolve_role_models)
ANSWERER_GGUF = "answerer.gguf"  # rankrag.model.export.ANSWERER_GGUF_PATH's name (not imported: no torch here)
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_N_CTX = 2048
SERVING_DOCS = "the rankrag serving docs (docs/serving.md in its source repository)"
# More than one token, so llama.cpp runs a real batch (where its AMX kernels crash); one token is asked back.
PROBE_PROMPT = "Question: What is the capital of France? Passage: Paris is the capital of France. Relevant:"
FORWARDED_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
LOG_TAIL_CHARS = 3000


@dataclass(frozen=True)
class ServeOptions:
    """What to serve and where. ``threads``: llama.cpp's threads (``None``: llama-cpp-python's default, half the
    cores); ``extra_args``: passed to ``llama_cpp.server`` after rankrag's own (a later option wins)."""

    model: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    alias: str = DEFAULT_ALIAS
    n_ctx: int = DEFAULT_N_CTX
    threads: int | None = None
    extra_args: tuple[str, ...] = ()
    start_timeout_s: float = 300.0
    probe_timeout_s: float = 120.0
    answerer_model: Path | None = None
    """The answerer role's GGUF when its weights differ from ``model``'s (``rankrag export``'s
    ``gguf/answerer.gguf``): served beside ``model`` as a second model named ``answerer``."""

    def __post_init__(self) -> None:
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            raise ValueError(f"port must be an integer from 1 to 65535, got {self.port!r}")
        if isinstance(self.n_ctx, bool) or not isinstance(self.n_ctx, int) or self.n_ctx < 16:
            raise ValueError(f"n_ctx must be an integer >= 16, got {self.n_ctx!r}")
        if self.threads is not None and (
            isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1
        ):
            raise ValueError(f"threads must be a positive integer, got {self.threads!r}")
        if not self.alias.strip():
            raise ValueError("alias must be a non-empty model name")
        if self.answerer_model is not None and self.alias == ANSWERER_ALIAS:
            raise ValueError(f"alias {ANSWERER_ALIAS!r} is the answerer role's served name; choose another")
        if self.answerer_model is not None and self.extra_args:
            raise ValueError(
                "arguments for llama_cpp.server cannot be added when an export's two roles are served (the server "
                "then reads its settings from a config file only)"
            )

    @property
    def connect_host(self) -> str:
        """The address a client on this machine connects to (a wildcard bind is reached on loopback)."""
        if self.host in ("", "0.0.0.0"):
            return "127.0.0.1"
        if self.host == "::":
            return "::1"
        return self.host

    @property
    def url(self) -> str:
        host = self.connect_host
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"


def resolve_model(model: str | os.PathLike[str] | None) -> Path:
    """The GGUF file to serve: ``None`` is the embedded SmolLM2; a ``rankrag export --gguf`` directory means its
    ``gguf/model.gguf``."""
    if model is None:
        from rankrag.model.embedded import embedded_llm_path

        return embedded_llm_path()
    path = Path(model).expanduser()
    if path.is_dir():
        exported = path / "gguf" / "model.gguf"
        if exported.is_file():
            return exported
        raise ModelNotFoundError(
            f"{path} is a directory without gguf/model.gguf; llama.cpp serves a .gguf file (`rankrag export --gguf` "
            f"writes OUTPUT/gguf/model.gguf; a safetensors directory is served by vLLM, see {SERVING_DOCS})"
        )
    if not path.is_file():
        raise ModelNotFoundError(f"no such model file: {path} (llama.cpp serves a .gguf file)")
    if path.suffix.lower() != ".gguf":
        raise ValueError(f"llama.cpp serves GGUF files; {path} is not a .gguf file")
    return path


def resolve_answerer_model(model: Path) -> Path | None:
    """The answerer's GGUF beside an exported ``gguf/model.gguf``, when the export has one."""
    answerer = model.parent / ANSWERER_GGUF
    return answerer if model.name == "model.gguf" and answerer.is_file() else None


def export_directory(model: Path) -> Path | None:
    """The ``rankrag export`` directory holding this GGUF and its calibration, if it is one."""
    root = model.parent.parent
    if model.parent.name == "gguf" and (root / "rankrag_calibration.json").is_file():
        return root
    return None


def role_config(options: ServeOptions) -> dict[str, object]:
    """llama-cpp-python's ``--config_file`` content serving ``options.model`` as ``options.alias`` and the answerer's
    GGUF as ``answerer``. Its server keeps one model in memory and swaps on a request for the other."""
    threads = {} if options.threads is None else {"n_threads": options.threads, "n_threads_batch": options.threads}
    models = [(options.model, options.alias), (options.answerer_model, ANSWERER_ALIAS)]
    return {
        "host": options.host,
        "port": options.port,
        "models": [
            {"model": str(path), "model_alias": alias, "n_ctx": options.n_ctx, "verbose": False, **threads}
            for path, alias in models
        ],
    }


def server_command(options: ServeOptions, *, extra_buffer_types: bool, config: Path | None = None) -> list[str]:
    """The command line of the server process (this Python, so the same environment); with two roles, the
    models are in ``config`` (written by :func:`role_config`)."""
    command = [sys.executable, "-m", "rankrag.served.llama_server"]
    if not extra_buffer_types:
        command.append(NO_EXTRA_BUFFER_TYPES)
    if options.answerer_model is not None:
        if config is None:
            raise ValueError("serving two roles needs the config file that role_config() describes")
        return [*command, "--config_file", str(config)]
    command += ["--model", str(options.model), "--model_alias", options.alias]
    command += ["--host", options.host, "--port", str(options.port), "--n_ctx", str(options.n_ctx)]
    if options.threads is not None:
        command += ["--n_threads", str(options.threads), "--n_threads_batch", str(options.threads)]
    return [*command, "--verbose", "False", *options.extra_args]


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


@dataclass
class LaunchedServer:
    """A running, probed server process. ``fallback``: why it runs with the extra buffer types off, if it fell back."""

    process: subprocess.Popen[bytes]
    options: ServeOptions
    extra_buffer_types: bool
    log: Path | None = None
    fallback: str | None = None
    crashes: list[int] = field(default_factory=list)  # exit codes of the starts that crashed before this one

    @property
    def url(self) -> str:
        return self.options.url

    def stop(self, timeout_s: float = 20.0) -> None:
        """Ask the server to shut down (SIGTERM), kill it if it has not within ``timeout_s``."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


def _check_installed() -> None:
    for module in ("llama_cpp", "uvicorn"):
        if importlib.util.find_spec(module) is None:
            raise MissingDependencyError(
                f'rankrag serve runs llama-cpp-python\'s server, which needs {module}; install it with: pip install "rankrag[server]"'
            )


def _check_port_free(options: ServeOptions) -> None:
    """Refuse a port something already listens on (else the readiness check could talk to that instead)."""
    host = options.host or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: TIME_WAIT is no conflict
        try:
            probe.bind((host, options.port))
        except OSError as error:
            raise ServerLaunchError(
                f"cannot serve on {host}:{options.port}: {error.strerror or error}; is another server running there? "
                f"(--port chooses another)"
            ) from error


def _request(options: ServeOptions, method: str, path: str, body: object, timeout_s: float) -> tuple[int, str]:
    connection = http.client.HTTPConnection(options.connect_host, options.port, timeout=timeout_s)
    try:
        payload = None if body is None else json.dumps(body).encode()
        headers = {} if payload is None else {"content-type": "application/json"}
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", errors="replace")
    finally:
        connection.close()


def _log_tail(log: Path | None) -> str:
    if log is None or not log.is_file():
        return " (the server's output is above)"
    return f"; the end of its output ({log}):\n{log.read_text(errors='replace')[-LOG_TAIL_CHARS:]}"


def _wait_ready(process: subprocess.Popen[bytes], options: ServeOptions, log: Path | None) -> int | None:
    """Wait until ``/v1/models`` answers: ``None``, or the exit code if the process was killed by a signal."""
    deadline = time.monotonic() + options.start_timeout_s
    while True:
        code = process.poll()
        if code is not None:
            if code < 0:
                return code
            raise ServerLaunchError(
                f"llama_cpp.server exited ({describe_exit(code)}) before it answered{_log_tail(log)}"
            )
        try:
            if _request(options, "GET", "/v1/models", None, 5.0)[0] == 200:
                return None
        except (OSError, http.client.HTTPException):
            pass
        if time.monotonic() > deadline:
            raise ServerLaunchError(
                f"llama_cpp.server did not answer on {options.url} within {options.start_timeout_s:g} s{_log_tail(log)}"
            )
        time.sleep(0.25)


def _probe(process: subprocess.Popen[bytes], options: ServeOptions, log: Path | None) -> int | None:
    """One multi-token completion: ``None`` if it was answered, or the exit code if it killed the server."""
    body = {"model": options.alias, "prompt": PROBE_PROMPT, "max_tokens": 1, "temperature": 0.0, "logprobs": 1}
    try:
        status, text = _request(options, "POST", "/v1/completions", body, options.probe_timeout_s)
    except (OSError, http.client.HTTPException) as error:
        try:
            code = process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            raise ServerLaunchError(
                f"llama_cpp.server at {options.url} did not answer the probe request "
                f"({type(error).__name__}: {error or 'no detail'}){_log_tail(log)}"
            ) from error
        return code
    if status != 200:
        raise ServerLaunchError(
            f"llama_cpp.server at {options.url} answered the probe request with HTTP {status}: {text[:300]}"
        )
    return None


def _start(options: ServeOptions, extra_buffer_types: bool, log: Path | None) -> subprocess.Popen[bytes]:
    config = None
    if options.answerer_model is not None:
        descriptor, name = tempfile.mkstemp(prefix="rankrag-serve-", suffix=".json")
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump(role_config(options), file)
        config = Path(name)
    command = server_command(options, extra_buffer_types=extra_buffer_types, config=config)
    if log is None:
        return subprocess.Popen(command)
    with log.open("ab") as handle:
        return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)


def launch(
    options: ServeOptions,
    *,
    extra_buffers: ExtraBuffers = "auto",
    log: Path | None = None,
    say: Callable[[str], None] | None = None,
) -> LaunchedServer:
    """Start the server, wait until it answers, probe it with a multi-token completion; return it running.

    ``extra_buffers``: llama.cpp's extra CPU buffer types (AMX, weight repacking); ``"auto"`` starts with them on
    and, if the server crashes before the probe is answered, restarts with them off, telling ``say`` in one line.
    ``log``: a file for the server's output (default: this process's stdout/stderr). Raises
    :class:`ServerLaunchError` if no working server results; the process is stopped then.
    """
    if extra_buffers not in EXTRA_BUFFERS:
        raise ValueError(f"extra_buffers must be one of {', '.join(EXTRA_BUFFERS)}, got {extra_buffers!r}")
    _check_installed()
    _check_port_free(options)
    attempts = [True, False] if extra_buffers == "auto" else [extra_buffers == "on"]
    fallback: str | None = None
    crashes: list[int] = []
    for extra_buffer_types in attempts:
        process = _start(options, extra_buffer_types, log)
        try:
            crashed = _wait_ready(process, options, log)
            if crashed is None:
                crashed = _probe(process, options, log)
        except BaseException:
            LaunchedServer(process, options, extra_buffer_types).kill()
            raise
        if crashed is None:
            return LaunchedServer(process, options, extra_buffer_types, log, fallback, crashes)
        crashes.append(crashed)
        if extra_buffer_types and extra_buffers == "auto":
            fallback = (
                f"llama.cpp's server crashed ({describe_exit(crashed)}) on the probe request with its extra CPU "
                f"buffer types (AMX, weight repacking) on; restarting it with them off (see {SERVING_DOCS})"
            )
            if say is not None:
                say(f"rankrag serve: {fallback}")
            continue
        setting = "on" if extra_buffer_types else "off"
        hint = "; try --extra-buffers off" if extra_buffer_types else ""
        raise ServerLaunchError(
            f"llama.cpp's server crashed ({describe_exit(crashed)}) on the probe request with its extra CPU buffer "
            f"types {setting}{hint} (see {SERVING_DOCS}){_log_tail(log)}"
        )
    raise AssertionError("unreachable")  # pragma: no cover


def connect_hint(options: ServeOptions) -> str:
    """The line that tells how to use the server."""
    exported = export_directory(options.model)
    calibration = f', calibration="{exported}"' if exported is not None else ""
    return (
        f'RankRAGModel.connect("{options.url}", model="{options.alias}", context_window={options.n_ctx}{calibration})'
    )


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    """While starting: SIGTERM and SIGHUP interrupt like Ctrl-C, so the half-started server is stopped too."""
    stopping = [sig for sig in FORWARDED_SIGNALS if sig != signal.SIGINT]
    previous = {sig: signal.signal(sig, signal.default_int_handler) for sig in stopping}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def wait_forwarding_signals(process: subprocess.Popen[bytes]) -> int:
    """Wait for ``process`` to end, passing SIGINT, SIGTERM and SIGHUP on to it; its exit status as a shell
    reports it (128 + N when signal N ended it)."""

    def forward(signum: int, frame: FrameType | None) -> None:
        if process.poll() is None:
            process.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED_SIGNALS}
    try:
        code = process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - code if code < 0 else code


def serve(
    options: ServeOptions,
    *,
    extra_buffers: ExtraBuffers = "auto",
    say: Callable[[str], None] | None = None,
    out: IO[str] | None = None,
) -> int:
    """``rankrag serve``: launch, print the URL and how to connect, serve until a signal ends the server; its exit
    status. Call from the main thread (it handles signals)."""
    write = say or (lambda line: print(line, file=sys.stderr, flush=True))
    stream = out or sys.stdout
    with _signals_interrupt():
        server = launch(options, extra_buffers=extra_buffers, say=write)
    try:
        kernels = "on" if server.extra_buffer_types else "off"
        roles = "" if options.answerer_model is None else f" and {options.answerer_model} as {ANSWERER_ALIAS!r}"
        print(
            f"rankrag serve: serving {options.model} as {options.alias!r}{roles} at {server.url} (n_ctx {options.n_ctx}, "
            f"llama.cpp's extra CPU buffer types {kernels}); Ctrl-C stops it.\n"
            f"rankrag serve: connect with {connect_hint(options)}",
            file=stream,
            flush=True,
        )
        return wait_forwarding_signals(server.process)
    finally:
        server.stop()

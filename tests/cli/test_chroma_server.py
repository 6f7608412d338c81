"""`--chroma-url`: index into and ask from a real `chroma run` server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cli_helpers import squad_paragraphs, write_corpus
from typer.testing import Result

from rankrag.index import ingest, store

CHROMA_BIN = Path(sys.executable).parent / "chroma"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[str]:
    """A Chroma server persisting to a tmp dir; yields its URL and stops it afterwards."""
    if not CHROMA_BIN.is_file():
        pytest.skip("the chroma executable is not installed beside this Python")
    port = _free_port()
    log_path = tmp_path / "chroma.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [
                str(CHROMA_BIN),
                "run",
                "--path",
                str(tmp_path / "server-data"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                pytest.fail(
                    f"chroma run exited with {server.returncode}: {log_path.read_text(errors='replace')[-2000:]}"
                )
            try:
                store.connect(chroma_url=url, create=False)
                break
            except store.StoreError:
                if time.monotonic() > deadline:
                    pytest.fail(f"chroma run did not answer in 120 s: {log_path.read_text(errors='replace')[-2000:]}")
                time.sleep(0.25)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=20)


def test_index_and_ask_through_a_chroma_server(
    tmp_path: Path, chroma_server: str, invoke: Callable[..., Result], embedded_model: object
) -> None:
    paragraphs = [p for p in squad_paragraphs() if p["title"] == "Steam_engine"][:6]
    files = write_corpus(tmp_path / "docs", paragraphs, per_file=2, suffix=".md")

    target = ("--chroma-url", chroma_server, "--collection", "team-docs", "--chunk-size", 300, "--chunk-overlap", 0)
    indexed = invoke("index", tmp_path / "docs", *target)
    assert indexed.exit_code == 0, indexed.output
    again = invoke("index", files[0], *target)
    assert "0 chunks added" in again.stdout and "1 unchanged" in again.stdout

    client = store.connect(chroma_url=chroma_server, create=False)
    shared = store.open_for_reading(client, "team-docs")
    assert shared.count() == sum(len(ingest.chunk_file(f.resolve(), chunk_size=300, chunk_overlap=0)) for f in files)
    assert (tmp_path / "server-data" / "chroma.sqlite3").is_file()  # the server, not this process, stores it

    asked = invoke(
        "ask",
        "Who invented the atmospheric engine?",
        "--chroma-url",
        chroma_server,
        "--collection",
        "team-docs",
        "--json",
        "--top-n",
        2,
        "--top-k",
        1,
        "--max-new-tokens",
        4,
    )
    assert asked.exit_code == 0, asked.output
    payload = json.loads(asked.stdout)
    assert len(payload["contexts"]) == 1
    assert {c["source"] for c in payload["contexts"]} <= {str(f.resolve()) for f in files}


def test_unreachable_server_is_one_clear_error(invoke: Callable[..., Result], tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    result = invoke("ask", "Why?", "--chroma-url", url)
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert result.stderr.strip().startswith(f"rankrag: error: cannot reach the Chroma server at {url}")

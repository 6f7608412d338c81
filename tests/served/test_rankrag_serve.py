"""`rankrag serve`, the real command in a subprocess: it serves the embedded GGUF (falling back from llama.cpp's AMX
kernels where they crash), RankRAGModel.connect scores through it, and Ctrl-C (SIGINT) stops it and its server."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from served_helpers import ALIAS, SERVER_START_S, free_port
from typer.testing import CliRunner

pytest.importorskip("llama_cpp", reason='llama-cpp-python is not installed (pip install "rankrag[server]")')

from rankrag import RankRAGModel  # noqa: E402
from rankrag.cli.app import app  # noqa: E402
from rankrag.served import ServedRankRAGModel  # noqa: E402

pytestmark = pytest.mark.timeout(600)

RANKRAG_BIN = Path(sys.executable).parent / "rankrag"
FALLBACK = "restarting it with them off"


def rankrag_command() -> list[str]:
    return [str(RANKRAG_BIN)] if RANKRAG_BIN.exists() else [sys.executable, "-m", "rankrag.cli.app"]


def wait_for_line(process: subprocess.Popen[bytes], out: Path, err: Path, text: str) -> str:
    deadline = time.monotonic() + SERVER_START_S
    while text not in out.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(
                f"rankrag serve did not get ready ({process.poll()}): {err.read_text(errors='replace')[-3000:]}"
            )
        time.sleep(0.25)
    return out.read_text(errors="replace")


def test_rankrag_serve_serves_the_embedded_model_until_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [*rankrag_command(), "serve", "--port", str(port), "--threads", "2"], stdout=stdout, stderr=stderr
        )
    try:
        printed = wait_for_line(process, out, err, "rankrag serve: connect with")
        url = f"http://127.0.0.1:{port}"
        assert f'RankRAGModel.connect("{url}", model="{ALIAS}", context_window=2048)' in printed
        log = err.read_text(errors="replace")
        assert log.count(FALLBACK) <= 1
        print(next((line for line in log.splitlines() if FALLBACK in line), "no fallback: the stock server worked"))

        model = RankRAGModel.connect(url, model=ALIAS, context_window=2048)
        assert isinstance(model, ServedRankRAGModel)
        try:
            assert model.info.flavor == "llama-cpp-python"
            scores = model.score(
                "What is the capital of France?", ["Paris is the capital of France.", "Bananas are yellow."]
            )
        finally:
            model.close()
        assert len(scores) == 2 and all(0.0 < s < 1.0 for s in scores), scores  # (agreement: test_served_llama_cpp)

        process.send_signal(signal.SIGINT)  # Ctrl-C: passed on to the server, which shuts down cleanly
        assert process.wait(timeout=60) == 0
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
            pass  # nothing listens any more: the server process went with it
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def test_rankrag_serve_refuses_what_it_cannot_serve(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["serve", "--model", str(tmp_path / "missing.gguf")])
    assert result.exit_code == 1 and "no such model file" in result.output, result.output
    (tmp_path / "model.safetensors").write_bytes(b"")
    result = runner.invoke(app, ["serve", "--model", str(tmp_path / "model.safetensors")])
    assert result.exit_code == 2 and "not a .gguf file" in result.output, result.output
    result = runner.invoke(app, ["serve", "--model", str(tmp_path)])
    assert result.exit_code == 1 and "without gguf/model.gguf" in result.output, result.output
    result = runner.invoke(app, ["serve", "--extra-buffers", "maybe"])
    assert result.exit_code == 2 and "--extra-buffers must be one of auto, on, off" in result.output, result.output
    with socket.create_server(("127.0.0.1", 0)) as taken:
        result = runner.invoke(app, ["serve", "--port", str(taken.getsockname()[1])])
    assert result.exit_code == 1 and "is another server running there?" in result.output, result.output

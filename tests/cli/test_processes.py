"""The installed `rankrag` executable as a real process: errors without tracebacks, and SIGKILL halfway through indexing."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from cli_helpers import RANKRAG_BIN, one_line_error, squad_paragraphs, write_corpus

from rankrag.cli.index import run_index
from rankrag.index import ingest, store

PROGRESS = re.compile(rb"(\d+)/(\d+) \[")


def test_installed_executable_reports_a_missing_path_in_one_line(tmp_path: Path) -> None:
    completed = subprocess.run(
        [str(RANKRAG_BIN), "index", str(tmp_path / "missing"), "--db", str(tmp_path / "db")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode != 0
    assert one_line_error(completed.stderr) == f"rankrag: error: path not found: {tmp_path / 'missing'}"
    assert completed.stdout == "" and not (tmp_path / "db").exists()


def _forget_open_databases() -> None:
    """Drop chromadb's per-process client cache so the next open reads what is on disk now."""
    from chromadb.api.shared_system_client import SharedSystemClient

    SharedSystemClient.clear_system_cache()


def _stored(documents: store.DocumentStore) -> list[tuple[str, int, str]]:
    result = documents.collection.get(include=["documents", "metadatas"])
    return sorted(
        (str(m["source"]), int(m["chunk_index"]), str(d))  # type: ignore[index, arg-type]
        for m, d in zip(result["metadatas"] or [], result["documents"] or [])
    )


def _kill_when_progress_reaches(process: subprocess.Popen[bytes], chunks: int, deadline_s: float) -> tuple[int, int]:
    """SIGKILL ``process`` once its progress bar shows ``chunks`` written; returns (written, total) seen."""
    assert process.stderr is not None
    seen = bytearray()
    lock = threading.Lock()

    def read() -> None:
        while block := os.read(process.stderr.fileno(), 4096):  # type: ignore[union-attr]
            with lock:
                seen.extend(block)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline and process.poll() is None:
        with lock:
            found = PROGRESS.findall(bytes(seen))
        if found and int(found[-1][0]) >= chunks:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=60)
            return int(found[-1][0]), int(found[-1][1])
        time.sleep(0.02)
    process.kill()
    process.wait(timeout=60)
    reader.join(timeout=5)
    pytest.fail(f"indexing ended (rc={process.returncode}) before it could be killed halfway: {bytes(seen)[-2000:]!r}")


def test_sigkill_halfway_leaves_a_database_that_opens_and_a_rerun_completes(tmp_path: Path) -> None:
    paragraphs = squad_paragraphs()
    docs, db = tmp_path / "docs", tmp_path / "db"
    sizes = {"chunk_size": 300, "chunk_overlap": 0}
    files = write_corpus(docs, paragraphs[:90], per_file=5)
    final_texts = [f.read_text(encoding="utf-8") for f in files]
    for index, path in enumerate(files[:3]):  # an older version of three files is already indexed
        path.write_text(paragraphs[140 + index]["text"], encoding="utf-8")
    run_index(files[:3], db=db, show_progress=False, **sizes)
    for path, text in zip(files, final_texts):
        path.write_text(text, encoding="utf-8")
    expected = sorted((c.source, c.chunk_index, c.text) for f in files for c in ingest.chunk_file(f.resolve(), **sizes))
    _forget_open_databases()

    process = subprocess.Popen(
        [
            str(RANKRAG_BIN),
            "index",
            str(docs),
            "--db",
            str(db),
            "--chunk-size",
            "300",
            "--chunk-overlap",
            "0",
            "--batch-size",
            "8",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    written, total = _kill_when_progress_reaches(process, chunks=24, deadline_s=240)
    assert process.returncode == -signal.SIGKILL
    assert written < total == len(expected)

    _forget_open_databases()
    reopened = store.open_for_reading(store.connect(db, create=False), "rankrag")
    partial = _stored(reopened)
    assert 0 < len(partial) and partial != expected

    report, count = run_index([docs], db=db, show_progress=False, **sizes)
    assert report.files_unchanged > 0 and report.chunks_written < len(expected)
    after = _stored(reopened)
    assert count == len(after) == len(expected)
    assert after == expected  # every chunk present, none stale
    assert not [key for key, n in Counter((s, i) for s, i, _ in after).items() if n > 1]
    for _, _, text in (after[0], after[len(after) // 2], after[-1]):  # the vector index holds them too
        assert reopened.search(text, 1)[0].text == text

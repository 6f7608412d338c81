"""`rankrag blend` and `rankrag train` on bad input: one error line, a non-zero exit, nothing overwritten."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from rankrag.cli.app import app


def run(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stderr


def error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr and len(lines) == 1 and lines[0].startswith("rankrag: error: "), stderr
    return lines[0]


@pytest.fixture
def kept_blend(tmp_path: Path) -> Path:
    path = tmp_path / "blend.jsonl"
    path.write_text("an earlier blend\n", encoding="utf-8")
    return path


def test_blend_from_a_missing_directory_keeps_the_old_file(tmp_path: Path, kept_blend: Path) -> None:
    code, stderr = run("blend", "--output", kept_blend, "--data-dir", tmp_path / "missing")
    assert code != 0
    assert f"data directory '{tmp_path / 'missing'}' does not exist" in error_line(stderr)
    assert kept_blend.read_text(encoding="utf-8") == "an earlier blend\n"


def test_blend_names_a_malformed_ratio(tmp_path: Path, kept_blend: Path) -> None:
    code, stderr = run("blend", "--output", kept_blend, "--data-dir", tmp_path, "--ratio", "context_ranking")
    assert code == 2
    assert "--ratio expects NAME=NUMBER, got 'context_ranking'" in error_line(stderr)
    assert kept_blend.read_text(encoding="utf-8") == "an earlier blend\n"


def test_train_refuses_a_missing_or_malformed_blend(
    tmp_path: Path, kept_blend: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RANKRAG_DATA_DIR", raising=False)
    output = tmp_path / "run"
    code, stderr = run("train", "--output", output)
    assert code == 2 and "give --blend FILE or --data-dir DIR" in error_line(stderr)

    code, stderr = run("train", "--output", output, "--blend", tmp_path / "none.jsonl")
    assert code != 0 and "none.jsonl' does not exist; build one with `rankrag blend`" in error_line(stderr)

    code, stderr = run("train", "--output", output, "--blend", kept_blend)
    assert code == 2 and f"{kept_blend}:1: not a blend record" in error_line(stderr)
    assert not output.exists()

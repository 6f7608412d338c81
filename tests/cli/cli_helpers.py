"""Helpers shared by the CLI tests: corpora made of real SQuAD paragraphs (CC BY-SA 4.0), error-line checks."""

from __future__ import annotations

import json
import sys
from pathlib import Path

FIXTURES = Path(__file__).parent.parent / "fixtures"
RANKRAG_BIN = Path(sys.executable).parent / "rankrag"


def squad_paragraphs() -> list[dict[str, str]]:
    with (FIXTURES / "squad_passages.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def write_corpus(folder: Path, paragraphs: list[dict[str, str]], per_file: int, suffix: str = ".txt") -> list[Path]:
    """Files of ``per_file`` paragraphs each, separated by blank lines; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for start in range(0, len(paragraphs), per_file):
        group = paragraphs[start : start + per_file]
        path = folder / f"doc{start // per_file:03d}{suffix}"
        path.write_text("\n\n".join(p["text"] for p in group) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def one_line_error(result_stderr: str) -> str:
    """The one error line a failed command printed (after any warnings); fails on a traceback."""
    assert "Traceback" not in result_stderr, result_stderr
    lines = [line for line in result_stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("rankrag: error")]
    assert len(errors) == 1 and lines[-1] == errors[0], result_stderr
    assert all(line.startswith("rankrag: warning") for line in lines[:-1]), result_stderr
    return errors[0]

"""`make demo`: index the shipped sample corpus into a persistent Chroma database, then ask it a question.

The database lives in ``$RANKRAG_DEMO_DB`` (default ``~/.cache/rankrag/demo-db-<8 hex digits>``, one per
installed copy of the sample corpus, so two checkouts never index the same articles twice into one collection); a
second run finds the documents already indexed and only answers. The answer streams with the embedded SmolLM2-135M model.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import typer

from rankrag.cli.common import command_errors
from rankrag.cli.index import run_ask, run_index

SAMPLE_CORPUS = Path(__file__).parent.parent / "sample_corpus" / "articles"
QUESTION = "Who built the first full-scale working railway steam locomotive?"


def demo_db(corpus: Path = SAMPLE_CORPUS) -> Path:
    key = hashlib.sha256(str(corpus.resolve()).encode("utf-8")).hexdigest()[:8]
    default = Path.home() / ".cache" / "rankrag" / f"demo-db-{key}"
    return Path(os.environ.get("RANKRAG_DEMO_DB", default)).expanduser()


def main(question: str = QUESTION) -> int:
    """Run the demo; returns the exit status (non-zero after a one-line error on stderr)."""
    db = demo_db()
    try:
        with command_errors():
            _index_and_ask(question, db)
    except typer.Exit as stop:
        return int(stop.exit_code)
    return 0


def _index_and_ask(question: str, db: Path) -> None:
    print(f"$ rankrag index {SAMPLE_CORPUS} --db {db}")
    report, total = run_index([SAMPLE_CORPUS], db=db)
    print(
        f"{report.files_written} file(s) indexed, {report.files_unchanged} unchanged; "
        f"the collection holds {total} chunks.\n"
    )
    print(f'$ rankrag ask "{question}" --db {db} --candidates 8 --top-k 3\n')
    sys.stdout.flush()
    run_ask(question, db=db, candidates=8, top_k=3, max_new_tokens=64)


if __name__ == "__main__":
    sys.exit(main(" ".join(sys.argv[1:]) or QUESTION))

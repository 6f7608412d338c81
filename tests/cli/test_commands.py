"""`rankrag index` and `rankrag ask` through the real typer app, on a real Chroma directory and the embedded model."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_helpers import one_line_error, squad_paragraphs, write_corpus
from typer.testing import Result

from rankrag.cli.demo import SAMPLE_CORPUS
from rankrag.cli.index import run_ask

QUESTION = "When did the world's first railway journey take place?"
FAST = ("--candidates", 3, "--top-k", 2, "--max-new-tokens", 6)


def test_index_warns_about_unreadable_files_and_reports(tmp_path: Path, invoke: Callable[..., Result]) -> None:
    docs = tmp_path / "docs"
    write_corpus(docs, squad_paragraphs()[:2], per_file=1)
    (docs / "blob.txt").write_bytes(b"\x00\x01\x02binary")
    (docs / "old.md").write_bytes("Café".encode("latin-1"))

    result = invoke("index", docs, "--db", tmp_path / "db", "--no-progress")

    assert result.exit_code == 0, result.output
    assert f"skipping {docs / 'blob.txt'}: binary content" in result.stderr
    assert f"skipping {docs / 'old.md'}: not valid UTF-8" in result.stderr
    assert "2 file(s) written" in result.stdout and "2 skipped" in result.stdout
    again = invoke("index", docs, "--db", tmp_path / "db", "--no-progress")
    assert "0 file(s) written (0 chunks added" in again.stdout and "2 unchanged" in again.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("index", "{tmp}/missing", "--db", "{tmp}/db"), "path not found: {tmp}/missing"),
        (("index", "{tmp}/empty", "--db", "{tmp}/db"), "no .txt, .md, .html or .pdf files found in {tmp}/empty"),
        (("index", "{tmp}/docs", "--db", "{tmp}/docs/a.txt"), "is a file, not a directory"),
        (("index", "{tmp}/docs", "--db", "{tmp}/docs/a.txt/db"), "cannot create database directory"),
        (("index", "{tmp}/docs", "--db", "{tmp}/corrupt"), "cannot open the Chroma database at {tmp}/corrupt"),
        (("index", "{tmp}/docs", "--db", "{tmp}/db", "--chunk-overlap", "2000"), "chunk overlap"),
        (("index", "{tmp}/docs", "--db", "{tmp}/db", "--chroma-url", "http://127.0.0.1:9"), "not both"),
        (("index", "{tmp}/docs/only-binary", "--db", "{tmp}/db"), "none of the files could be read"),
        (
            ("index", "{tmp}/docs", "--db", "{tmp}/db", "--collection", "x"),
            "cannot open collection 'x': Validation error",
        ),
        (("ask", "", "--db", "{tmp}/db"), "question is empty"),
        (("ask", "Why?", "--db", "{tmp}/nothing-here"), "no Chroma database at {tmp}/nothing-here"),
        (("ask", "Why?", "--db", "{tmp}/corrupt"), "cannot open the Chroma database"),
        (
            ("ask", "Why?", "--db", "{tmp}/db", "--top-k", "9", "--top-n", "3"),
            "--top-k (9) cannot be larger than --candidates",
        ),
        (("ask", "Why?", "--chroma-url", "ftp://somewhere"), "--chroma-url must look like http://HOST:PORT"),
    ],
)
def test_bad_input_gives_one_line_and_nonzero_exit(
    tmp_path: Path, invoke: Callable[..., Result], args: tuple[str, ...], message: str
) -> None:
    (tmp_path / "empty").mkdir()
    write_corpus(tmp_path / "docs", squad_paragraphs()[:1], per_file=1)
    (tmp_path / "docs" / "a.txt").write_text("a")
    (tmp_path / "docs" / "only-binary").mkdir()
    (tmp_path / "docs" / "only-binary" / "x.txt").write_bytes(b"\x00\xff")
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "chroma.sqlite3").write_bytes(b"this is not a sqlite database" * 200)

    result = invoke(*(a.format(tmp=tmp_path) for a in args))

    assert result.exit_code != 0
    assert message.format(tmp=tmp_path) in one_line_error(result.stderr)


def test_errors_on_unknown_collection_and_models(sample_db: Path, invoke: Callable[..., Result]) -> None:
    missing = invoke("ask", "Why?", "--db", sample_db, "--collection", "nope")
    assert missing.exit_code != 0
    assert "no collection 'nope'; collections here: rankrag" in one_line_error(missing.stderr)

    unknown = invoke("ask", "Why?", "--db", sample_db, "--model", sample_db / "no-such-model", *FAST)
    assert unknown.exit_code != 0
    assert f"model '{sample_db / 'no-such-model'}' not found" in one_line_error(unknown.stderr)

    other_embedder = invoke("index", SAMPLE_CORPUS, "--db", sample_db, "--embedding-model", sample_db)
    assert other_embedder.exit_code != 0
    assert "was built with embedding model 'all-MiniLM-L6-v2'" in one_line_error(other_embedder.stderr)

    unknown_embedder = invoke(
        "index", SAMPLE_CORPUS, "--db", sample_db, "--collection", "other", "--embedding-model", "nobody/none"
    )
    assert unknown_embedder.exit_code != 0
    assert "cannot load embedding model 'nobody/none'" in one_line_error(unknown_embedder.stderr)


def test_ask_json_prints_one_object_with_reranked_contexts(
    sample_db: Path, invoke: Callable[..., Result], embedded_model: object
) -> None:
    result = invoke(
        "ask", "Who built the first full-scale working railway steam locomotive?", "--db", sample_db, "--json", *FAST
    )

    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)  # the whole of stdout is exactly one JSON object
    assert set(payload) == {"question", "answer", "abstained", "contexts"} and payload["abstained"] is False
    assert payload["question"] == "Who built the first full-scale working railway steam locomotive?"
    assert isinstance(payload["answer"], str) and payload["answer"].strip()
    assert len(payload["contexts"]) == 2
    corpus = {str(p.resolve()) for p in SAMPLE_CORPUS.iterdir()}
    for context in payload["contexts"]:
        assert set(context) == {"text", "source", "score"}
        assert context["source"] in corpus and context["text"] in Path(context["source"]).read_text(encoding="utf-8")
        assert 0.0 <= context["score"] <= 1.0
    scores = [c["score"] for c in payload["contexts"]]
    assert scores == sorted(scores, reverse=True)


class _RecordingStdout:
    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)

    def flush(self) -> None:
        self.writes.append("<flush>")


def test_ask_with_a_threshold_no_passage_reaches_says_not_found(
    sample_db: Path, invoke: Callable[..., Result], embedded_model: object
) -> None:
    """A relevance probability is at most 1, so --min-score 1.01 keeps nothing: the not-found message, no answer."""
    from rankrag.defaults import NOT_FOUND_MESSAGE

    question = "Who built the first full-scale working railway steam locomotive?"
    result = invoke("ask", question, "--db", sample_db, "--json", "--min-score", "1.01", *FAST)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["abstained"] is True and payload["answer"] == NOT_FOUND_MESSAGE and payload["contexts"] == []
    streamed = invoke("ask", question, "--db", sample_db, "--min-score", "1.01", "--not-found-message", "Nope.", *FAST)
    assert streamed.exit_code == 0 and streamed.stdout.strip() == "Nope."


def test_ask_streams_the_answer_then_lists_passages(
    sample_db: Path, monkeypatch: pytest.MonkeyPatch, embedded_model: object
) -> None:
    stdout = _RecordingStdout()
    monkeypatch.setattr(sys, "stdout", stdout)

    run_ask(QUESTION, db=sample_db, candidates=2, top_k=1, max_new_tokens=8)

    header = next(i for i, text in enumerate(stdout.writes) if "Passages used" in text)
    answer_pieces = [text for text in stdout.writes[:header] if text != "<flush>"]
    assert len(answer_pieces) >= 2 and "".join(answer_pieces).strip()
    assert stdout.writes[1] == "<flush>"  # the first piece is flushed before the rest is generated
    listing = "".join(stdout.writes[header:])
    entries = [line for line in listing.splitlines() if line[:1].isdigit()]
    assert len(entries) == 1 and entries[0].startswith("1. [") and "sample_corpus/articles/" in entries[0]


def test_each_copy_of_the_sample_corpus_gets_its_own_demo_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One shared demo database held the articles of two checkouts, so `make demo` showed each passage twice."""
    from rankrag.cli.demo import demo_db

    monkeypatch.delenv("RANKRAG_DEMO_DB", raising=False)
    here, there = tmp_path / "a" / "articles", tmp_path / "b" / "articles"
    assert demo_db(here) != demo_db(there) and demo_db(here) == demo_db(here)
    assert demo_db().parent == Path.home() / ".cache" / "rankrag"
    monkeypatch.setenv("RANKRAG_DEMO_DB", str(tmp_path / "db"))
    assert demo_db(here) == tmp_path / "db"

"""No data loss: adding documents to an existing collection never drops the ones already there.

Rounds of new files (arbitrary unicode, duplicate contents, empty files) are indexed into one persistent
Chroma collection through rankrag.index.store / rankrag.index.ingest, the code behind ``rankrag index``, reopening the
database between rounds. After every round the collection holds exactly the chunks of every file indexed so
far, once each. The SIGKILL-halfway crash test of ``rankrag index`` is the CLI's: tests/cli/test_processes.py.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from fuzz_strategies import any_text, awkward_text
from hypothesis import given
from hypothesis import strategies as st
from reliability_budget import fuzz_settings, time_limit

pytestmark = pytest.mark.timeout(time_limit(600))

store = pytest.importorskip("rankrag.index.store")
ingest = pytest.importorskip("rankrag.index.ingest")

SIZES = {"chunk_size": 120, "chunk_overlap": 20}
# Real text with words (so it splits into several chunks), unicode noise, or nothing at all.
WORDS = ["Hamlet", "is", "a", "tragedy", "by", "Shakespeare.", "\u05e9\u05dc\u05d5\u05dd", "\U0001f600", "\n\n"]
file_text = st.one_of(
    st.lists(st.sampled_from(WORDS), max_size=80).map(" ".join),
    any_text,
    awkward_text,
    st.just(""),
)


def stored(documents: store.DocumentStore) -> list[tuple[str, int, str]]:
    result = documents.collection.get(include=["documents", "metadatas"])
    return sorted(
        (str(m["source"]), int(m["chunk_index"]), str(d))  # type: ignore[index, arg-type]
        for m, d in zip(result["metadatas"] or [], result["documents"] or [])
    )


def expected(files: list[Path]) -> list[tuple[str, int, str]]:
    chunks = []
    for path in files:
        try:
            chunks += ingest.chunk_file(path, **SIZES)
        except ingest.UnreadableFileError:  # empty or binary-looking files are skipped, never stored
            continue
    return sorted((c.source, c.chunk_index, c.text) for c in chunks)


@fuzz_settings("model")
@given(rounds=st.lists(st.lists(file_text, min_size=1, max_size=3), min_size=2, max_size=3), repeat=st.booleans())
def test_adding_files_keeps_every_chunk_already_stored(rounds: list[list[str]], repeat: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        written: list[Path] = []
        for number, texts in enumerate(rounds):
            new = []
            for index, text in enumerate(texts):
                path = (root / "docs" / f"round{number}-{index}.txt").resolve()
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
                new.append(path)
            documents = store.open_for_writing(store.connect(root / "db", create=True), "docs")  # reopened
            before = stored(documents)
            ingest.index_files(documents, new, show_progress=False, **SIZES)
            if repeat:  # an interrupted or repeated run adds nothing twice
                ingest.index_files(documents, new, show_progress=False, **SIZES)
            written += new
            after = stored(documents)
            assert set(before) <= set(after), "adding documents dropped chunks already stored"
            assert after == expected(written), "the collection must hold every chunk of every file, once"
            assert documents.count() == len(after)

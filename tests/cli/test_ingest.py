"""Reading, splitting and syncing documents into a real Chroma collection (MiniLM embeddings, no LLM)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import squad_paragraphs, write_corpus

from rankrag.index import ingest, store


@pytest.fixture
def documents(tmp_path: Path) -> store.DocumentStore:
    client = store.connect(tmp_path / "db", create=True)
    return store.open_for_writing(client, "docs")


def stored_chunks(documents: store.DocumentStore) -> list[tuple[str, int, str]]:
    result = documents.collection.get(include=["documents", "metadatas"])
    return sorted(
        (str(m["source"]), int(m["chunk_index"]), str(d))  # type: ignore[index, arg-type]
        for m, d in zip(result["metadatas"] or [], result["documents"] or [])
    )


def expected_chunks(files: list[Path], **sizes: int) -> list[tuple[str, int, str]]:
    return sorted((c.source, c.chunk_index, c.text) for f in files for c in ingest.chunk_file(f.resolve(), **sizes))


# ------------------------------------------------------------------------------------------ files
def test_collect_files_recurses_skips_hidden_and_names_other_files(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("alpha")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.md").write_text("# beta")
    (tmp_path / "sub" / "c.html").write_text("<p>gamma</p>")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "d.txt").write_text("hidden")
    (tmp_path / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")

    collected = ingest.collect_files([tmp_path, tmp_path / "a.txt"])

    assert [p.name for p in collected.files] == ["a.txt", "b.md", "c.html"]
    assert [(s.path.name, s.reason) for s in collected.skipped] == [
        ("photo.png", "not a .txt, .md, .html or .pdf file")
    ]


def test_collect_files_rejects_missing_paths_and_empty_folders(tmp_path: Path) -> None:
    with pytest.raises(ingest.IngestError, match="path not found: .*nowhere"):
        ingest.collect_files([tmp_path / "nowhere"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ingest.IngestError, match="no .txt, .md, .html or .pdf files found in .*empty"):
        ingest.collect_files([tmp_path / "empty"])


def test_read_text_refuses_binary_and_undecodable_files(tmp_path: Path) -> None:
    binary = tmp_path / "data.txt"
    binary.write_bytes(bytes(range(256)))
    latin1 = tmp_path / "latin1.md"
    latin1.write_bytes("Café crème".encode("latin-1"))
    with pytest.raises(ingest.UnreadableFileError, match="binary"):
        ingest.read_text(binary)
    with pytest.raises(ingest.UnreadableFileError, match="not valid UTF-8"):
        ingest.read_text(latin1)


def test_html_keeps_visible_text_only(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text(
        "<html><head><title>T</title><style>p {color: red}</style></head><body>"
        "<h1>Steam&nbsp;engines</h1><p>Newcomen built the <b>atmospheric</b> engine.</p>"
        "<script>var hidden = 1;</script><ul><li>Watt</li><li>Trevithick</li></ul></body></html>",
        encoding="utf-8",
    )
    assert ingest.read_text(page) == "Steam engines\n\nNewcomen built the atmospheric engine.\n\nWatt\n\nTrevithick"


def test_pdf_text_is_extracted(tmp_path: Path) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with matplotlib.rc_context({"pdf.use14corefonts": True}):
        figure = plt.figure()
        figure.text(0.1, 0.5, "Trevithick built the first railway locomotive")
        figure.savefig(tmp_path / "paper.pdf")
        plt.close(figure)
    assert "Trevithick built the first railway locomotive" in ingest.read_text(tmp_path / "paper.pdf")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    with pytest.raises(ingest.UnreadableFileError, match="PDF"):
        ingest.read_text(tmp_path / "broken.pdf")


def test_chunks_have_content_hash_ids(tmp_path: Path) -> None:
    text = "\n\n".join(p["text"] for p in squad_paragraphs()[:3])
    first = ingest.chunk_text(text, "/a.txt", chunk_size=400, chunk_overlap=50)
    again = ingest.chunk_text(text, "/a.txt", chunk_size=400, chunk_overlap=50)
    elsewhere = ingest.chunk_text(text, "/b.txt", chunk_size=400, chunk_overlap=50)

    assert len(first) > 3 and all(len(c.text) <= 400 for c in first)
    assert [c.id for c in first] == [c.id for c in again]
    assert len({c.id for c in first} | {c.id for c in elsewhere}) == 2 * len(first)
    with pytest.raises(ingest.IngestError, match="overlap"):
        ingest.chunk_text(text, "/a.txt", chunk_size=100, chunk_overlap=100)


# ------------------------------------------------------------------------------------------ syncing
def test_reindex_adds_nothing_and_changed_file_replaces_its_chunks(
    tmp_path: Path, documents: store.DocumentStore
) -> None:
    paragraphs = squad_paragraphs()
    files = write_corpus(tmp_path / "docs", paragraphs[:6], per_file=2)
    sizes = {"chunk_size": 500, "chunk_overlap": 0}

    first = ingest.index_files(documents, [f.resolve() for f in files], show_progress=False, **sizes)
    assert first.files_written == 3 and first.chunks_written == len(expected_chunks(files, **sizes))
    assert stored_chunks(documents) == expected_chunks(files, **sizes)

    again = ingest.index_files(documents, [f.resolve() for f in files], show_progress=False, **sizes)
    assert (again.files_written, again.files_unchanged, again.chunks_written) == (0, 3, 0)
    assert stored_chunks(documents) == expected_chunks(files, **sizes)

    old_text = files[1].read_text(encoding="utf-8")
    files[1].write_text(paragraphs[40]["text"] + "\n", encoding="utf-8")
    changed = ingest.index_files(documents, [files[1].resolve()], show_progress=False, **sizes)
    assert changed.files_written == 1 and changed.chunks_removed > 0
    assert stored_chunks(documents) == expected_chunks(files, **sizes)  # other files kept, no stale chunk left
    stored_text = " ".join(text for _, _, text in stored_chunks(documents))
    assert old_text.split("\n\n")[0][:200] not in stored_text


def test_adding_documents_keeps_existing_ones_and_search_finds_them(
    tmp_path: Path, documents: store.DocumentStore
) -> None:
    paragraphs = squad_paragraphs()
    first = write_corpus(tmp_path / "one", paragraphs[:2], per_file=1)
    second = write_corpus(tmp_path / "two", paragraphs[50:52], per_file=1, suffix=".md")
    ingest.index_files(documents, [f.resolve() for f in first], show_progress=False)
    ingest.index_files(documents, [f.resolve() for f in second], show_progress=False)

    assert stored_chunks(documents) == expected_chunks(first + second)
    hits = documents.search(paragraphs[51]["text"][:300], 4)
    assert hits[0].source == str(second[1].resolve())
    assert [h.similarity for h in hits] == sorted((h.similarity for h in hits), reverse=True)
    assert 0.5 < hits[0].similarity <= 1.0 + 1e-6

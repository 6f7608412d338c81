"""Turning files into chunks for the index: find files, read their text, split it, give each chunk a stable id.

Chunk ids are content hashes (of the source path, the chunk's position and its text), so re-indexing
unchanged files writes nothing and a re-run after a crash overwrites instead of duplicating.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

from rankrag.errors import MissingDependencyError, RankRAGError
from rankrag.index.chunk import Chunk
from rankrag.optional import require

if TYPE_CHECKING:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from rankrag.index.store import DocumentStore

TEXT_SUFFIXES = frozenset({".txt", ".text"})
MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
HTML_SUFFIXES = frozenset({".html", ".htm"})
PDF_SUFFIXES = frozenset({".pdf"})
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | MARKDOWN_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES
SUPPORTED_DESCRIPTION = ".txt, .md, .html or .pdf"
DEFAULT_CHUNK_SIZE = 1000
DEFAULT_CHUNK_OVERLAP = 100
DEFAULT_BATCH_SIZE = 32


class IngestError(RankRAGError, ValueError):
    """The paths given to the indexer cannot be used (missing, or holding no readable document)."""


class UnreadableFileError(RankRAGError, ValueError):
    """One file cannot be turned into text; the indexer skips it with a warning."""


@dataclass(frozen=True)
class SkippedFile:
    path: Path
    reason: str


@dataclass
class Collected:
    """The files found under the given paths, and those passed over with the reason why."""

    files: list[Path] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)


# ------------------------------------------------------------------------------------------ finding files
def collect_files(paths: Iterable[str | Path]) -> Collected:
    """Every file under ``paths`` (recursing into folders, hidden entries left out), sorted and unique.

    Raises :class:`IngestError` for a path that does not exist or when nothing indexable is found.
    """
    given = [Path(p).expanduser() for p in paths]
    if not given:
        raise IngestError("no path given; pass the files or folders to index")
    for path in given:
        if not path.exists():
            raise IngestError(f"path not found: {path}")
    collected = Collected()
    seen: set[Path] = set()
    for path in given:
        candidates = [path] if path.is_file() else sorted(_walk(path))
        for candidate in candidates:
            resolved = candidate.resolve()
            if resolved in seen:
                continue
            seen.add(resolved)
            if candidate.suffix.lower() in SUPPORTED_SUFFIXES:
                collected.files.append(resolved)
            else:
                collected.skipped.append(SkippedFile(candidate, f"not a {SUPPORTED_DESCRIPTION} file"))
    if not collected.files:
        where = ", ".join(str(p) for p in given)
        raise IngestError(f"no {SUPPORTED_DESCRIPTION} files found in {where}")
    return collected


def _walk(folder: Path) -> Iterator[Path]:
    for entry in folder.iterdir():
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            yield from _walk(entry)
        elif entry.is_file():
            yield entry


# ------------------------------------------------------------------------------------------ reading
def read_text(path: Path) -> str:
    """The text of a .txt/.md/.html/.pdf file; raises :class:`UnreadableFileError` saying why it cannot."""
    suffix = path.suffix.lower()
    if suffix in PDF_SUFFIXES:
        return _read_pdf(path)
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise UnreadableFileError("binary content, not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise UnreadableFileError(f"not valid UTF-8 text (byte {error.start})") from error
    return html_to_text(text) if suffix in HTML_SUFFIXES else text


class _TextExtractor(HTMLParser):
    """Visible text of an HTML document, with block elements on their own lines."""

    HIDDEN = frozenset({"script", "style", "noscript", "template", "svg", "head"})
    BLOCKS = frozenset(
        {
            "p",
            "div",
            "br",
            "li",
            "ul",
            "ol",
            "tr",
            "table",
            "section",
            "article",
            "header",
            "footer",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "pre",
            "blockquote",
            "title",
            "dd",
            "dt",
            "hr",
            "main",
        }
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.HIDDEN:
            self.hidden_depth += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN:
            self.hidden_depth = max(0, self.hidden_depth - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden_depth:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """The visible text of an HTML document (scripts, styles and the head left out)."""
    extractor = _TextExtractor()
    extractor.feed(markup)
    extractor.close()
    lines = (" ".join(line.split()) for line in "".join(extractor.parts).splitlines())
    paragraphs: list[str] = []
    for line in lines:
        if line:
            paragraphs.append(line)
    return "\n\n".join(paragraphs)


def _read_pdf(path: Path) -> str:
    try:
        pypdf = require("pypdf", "pdf", "reading PDF files")
    except MissingDependencyError as error:  # skip this file (with the install hint), index the others
        raise UnreadableFileError(str(error)) from error
    PdfReader, PyPdfError = pypdf.PdfReader, pypdf.errors.PyPdfError
    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            raise UnreadableFileError("the PDF is encrypted")
        return "\n\n".join(page.extract_text() or "" for page in reader.pages)
    except (PyPdfError, ValueError, KeyError, OSError) as error:
        raise UnreadableFileError(f"not a readable PDF ({error})") from error


# ------------------------------------------------------------------------------------------ splitting
def make_splitter(
    chunk_size: int = DEFAULT_CHUNK_SIZE, chunk_overlap: int = DEFAULT_CHUNK_OVERLAP, *, markdown: bool = False
) -> RecursiveCharacterTextSplitter:
    """A LangChain recursive splitter (headings first for Markdown, then paragraphs, lines, words)."""
    splitters = require("langchain_text_splitters", "chroma", "splitting documents for the index")
    Language, RecursiveCharacterTextSplitter = splitters.Language, splitters.RecursiveCharacterTextSplitter

    if chunk_size < 1:
        raise IngestError(f"chunk size must be a positive number of characters, got {chunk_size}")
    if not 0 <= chunk_overlap < chunk_size:
        raise IngestError(f"chunk overlap must be at least 0 and smaller than the chunk size, got {chunk_overlap}")
    if markdown:
        return RecursiveCharacterTextSplitter.from_language(
            Language.MARKDOWN, chunk_size=chunk_size, chunk_overlap=chunk_overlap
        )
    return RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap)


def chunk_id(source: str, chunk_index: int, text: str) -> str:
    """Stable id of a chunk: equal content at the same place in the same file gives the same id."""
    return hashlib.sha256(f"{source}\x00{chunk_index}\x00{text}".encode()).hexdigest()


def chunk_text(
    text: str,
    source: str,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    chunk_overlap: int = DEFAULT_CHUNK_OVERLAP,
    markdown: bool = False,
) -> list[Chunk]:
    """Split ``text`` of the document ``source`` into chunks with content-hash ids."""
    splitter = make_splitter(chunk_size, chunk_overlap, markdown=markdown)
    pieces = [piece.strip() for piece in splitter.split_text(text)]
    pieces = [piece for piece in pieces if piece]
    return [Chunk(chunk_id(source, i, piece), piece, source, i) for i, piece in enumerate(pieces)]


def chunk_file(
    path: Path, *, chunk_size: int = DEFAULT_CHUNK_SIZE, chunk_overlap: int = DEFAULT_CHUNK_OVERLAP
) -> list[Chunk]:
    """Read and split one file; raises :class:`UnreadableFileError` when it holds no usable text."""
    try:
        text = read_text(path)
    except OSError as error:
        raise UnreadableFileError(f"cannot be read ({error.strerror or error})") from error
    chunks = chunk_text(
        text,
        str(path),
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        markdown=path.suffix.lower() in MARKDOWN_SUFFIXES,
    )
    if not chunks:
        raise UnreadableFileError("no text in it")
    return chunks


# ------------------------------------------------------------------------------------------ indexing
@dataclass
class IndexReport:
    """What one indexing run did."""

    files_written: int = 0
    files_unchanged: int = 0
    chunks_written: int = 0
    chunks_removed: int = 0
    skipped: list[SkippedFile] = field(default_factory=list)


@dataclass
class _FilePlan:
    pending: list[Chunk]
    stale: set[str]


def index_files(
    store: DocumentStore,
    files: Iterable[Path],
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    chunk_overlap: int = DEFAULT_CHUNK_OVERLAP,
    batch_size: int = DEFAULT_BATCH_SIZE,
    show_progress: bool = True,
    on_skip: Callable[[SkippedFile], None] | None = None,
) -> IndexReport:
    """Bring ``store`` up to date with ``files``: new chunks written, chunks of changed files replaced.

    Each file's new chunks are written before its old ones are deleted, so a run killed at any point
    loses nothing and the next run finishes the job; unchanged files cost one id look-up each.
    Chunks of files not named here are never touched.
    """
    make_splitter(chunk_size, chunk_overlap)  # reject bad sizes before reading anything
    if batch_size < 1:
        raise IngestError(f"batch size must be a positive integer, got {batch_size}")
    report = IndexReport()
    plans: list[_FilePlan] = []
    for path in files:
        try:
            chunks = chunk_file(path, chunk_size=chunk_size, chunk_overlap=chunk_overlap)
        except UnreadableFileError as error:
            skipped = SkippedFile(path, str(error))
            report.skipped.append(skipped)
            if on_skip is not None:
                on_skip(skipped)
            continue
        stored = store.ids_of_source(str(path))
        wanted = {chunk.id for chunk in chunks}
        if wanted == stored:
            report.files_unchanged += 1
            continue
        plans.append(_FilePlan(pending=[c for c in chunks if c.id not in stored], stale=stored - wanted))
    report.files_written = len(plans)

    total = sum(len(plan.pending) for plan in plans)
    buffer: list[Chunk] = []
    waiting: list[_FilePlan] = []
    with tqdm(
        total=total, desc="Embedding", unit="chunk", file=sys.stderr, disable=not show_progress or not total
    ) as bar:

        def flush() -> None:
            store.write(buffer)
            report.chunks_written += len(buffer)
            bar.update(len(buffer))
            buffer.clear()
            for plan in waiting:  # every chunk of these files is stored now: their old chunks can go
                store.delete(sorted(plan.stale))
                report.chunks_removed += len(plan.stale)
            waiting.clear()

        for plan in plans:
            for chunk in plan.pending:
                buffer.append(chunk)
                if len(buffer) >= batch_size:
                    flush()
            waiting.append(plan)
        flush()
    return report


def index_paths(
    paths: Iterable[str | Path],
    open_documents: Callable[[], DocumentStore],
    *,
    chunk_size: int | None = None,
    chunk_overlap: int | None = None,
    batch_size: int | None = None,
    show_progress: bool = True,
    on_skip: Callable[[SkippedFile], None] | None = None,
) -> tuple[IndexReport, int]:
    """Index the files under ``paths`` into the store ``open_documents`` gives; the run's report and the store's
    chunk count.

    The store is opened only once the paths and sizes are checked, so bad input fails before Chroma and the
    embedding model load. ``None`` sizes take the defaults; ``on_skip`` hears of each file passed over.
    """
    collected = collect_files(paths)
    for skipped in collected.skipped:
        if on_skip is not None:
            on_skip(skipped)
    size = DEFAULT_CHUNK_SIZE if chunk_size is None else chunk_size
    overlap = DEFAULT_CHUNK_OVERLAP if chunk_overlap is None else chunk_overlap
    make_splitter(size, overlap)
    documents = open_documents()
    report = index_files(
        documents,
        collected.files,
        batch_size=DEFAULT_BATCH_SIZE if batch_size is None else batch_size,
        show_progress=show_progress,
        on_skip=on_skip,
        chunk_size=size,
        chunk_overlap=overlap,
    )
    report.skipped[:0] = collected.skipped
    if report.files_written + report.files_unchanged == 0:
        raise IngestError("none of the files could be read; nothing was indexed")
    return report, documents.count()

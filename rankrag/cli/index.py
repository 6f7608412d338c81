"""`rankrag index` and `rankrag ask`: build a persistent Chroma index, then answer questions from it.

Heavy libraries (chromadb, sentence-transformers, torch) are imported inside the commands, so
``rankrag --help`` and input errors stay fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from rankrag.cli.common import (
    ANSWERER_ADAPTER_HELP,
    PROGRESS_HELP,
    candidates_option,
    command_errors,
    quiet_transformers,
)
from rankrag.defaults import DEFAULT_MAX_NEW_TOKENS, NOT_FOUND_MESSAGE
from rankrag.model.validation import check_threshold

if TYPE_CHECKING:
    from rankrag.index.ingest import IndexReport, SkippedFile

DB_HELP = "Directory of the local Chroma database (created by `index` if missing)."
URL_HELP = "Use the Chroma server at http://HOST:PORT instead of a local directory."
COLLECTION_HELP = "Collection inside the database."


def _quiet_libraries() -> None:
    """Keep stdout/stderr for our own output: no weight-loading bars or advisory logs from dependencies."""
    import logging

    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)  # optional CPU kernels it cannot find
    quiet_transformers()


# ------------------------------------------------------------------------------------------ index
def run_index(
    paths: list[Path],
    *,
    db: Path | None = None,
    chroma_url: str | None = None,
    collection: str = "rankrag",
    embedding_model: str | None = None,
    chunk_size: int | None = None,
    chunk_overlap: int | None = None,
    batch_size: int | None = None,
    show_progress: bool = True,
) -> tuple[IndexReport, int]:
    """Index ``paths`` into the collection, warning on stderr of each file skipped; returns the run's report and
    the collection's chunk count."""
    from rankrag.index import ingest, store

    def open_documents() -> store.DocumentStore:
        _quiet_libraries()
        return store.open_for_writing(store.connect(db, chroma_url, create=True), collection, embedding_model)

    return ingest.index_paths(
        paths,
        open_documents,
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        batch_size=batch_size,
        show_progress=show_progress,
        on_skip=_warn_skipped,
    )


def _warn_skipped(skipped: SkippedFile) -> None:
    typer.echo(f"rankrag: warning: skipping {skipped.path}: {skipped.reason}", err=True)


def index_command(
    paths: list[Path] = typer.Argument(..., help="Files or folders (.txt, .md, .html, .pdf) to index."),
    db: Path | None = typer.Option(None, "--db", help=DB_HELP),
    chroma_url: str | None = typer.Option(None, "--chroma-url", help=URL_HELP),
    collection: str = typer.Option("rankrag", "--collection", help=COLLECTION_HELP),
    embedding_model: str | None = typer.Option(
        None,
        "--embedding-model",
        help="sentence-transformers model name or directory (default: the embedded all-MiniLM-L6-v2).",
    ),
    chunk_size: int = typer.Option(1000, "--chunk-size", help="Largest chunk, in characters."),
    chunk_overlap: int = typer.Option(100, "--chunk-overlap", help="Characters shared by neighbouring chunks."),
    batch_size: int = typer.Option(32, "--batch-size", help="Chunks embedded and written per step."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help=PROGRESS_HELP),
) -> None:
    """Read, split, embed and store documents. Unchanged files are skipped; changed files replace their chunks."""
    with command_errors():
        report, total = run_index(
            paths,
            db=db,
            chroma_url=chroma_url,
            collection=collection,
            embedding_model=embedding_model,
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            batch_size=batch_size,
            show_progress=progress,
        )
        where = chroma_url or str(db)
        typer.echo(
            f"{report.files_written} file(s) written ({report.chunks_written} chunks added, "
            f"{report.chunks_removed} stale removed), {report.files_unchanged} unchanged, "
            f"{len(report.skipped)} skipped; collection {collection!r} at {where} holds {total} chunks"
        )


# ------------------------------------------------------------------------------------------ ask
def _check_ask_options(question: str, candidates: int, top_k: int, max_new_tokens: int, alpha: float | None) -> None:
    from rankrag.model.validation import check_positive, check_query

    check_query(question, "question")
    check_positive(candidates, "--candidates")
    check_positive(top_k, "--top-k")
    check_positive(max_new_tokens, "--max-new-tokens")
    if top_k > candidates:
        raise ValueError(f"--top-k ({top_k}) cannot be larger than --candidates ({candidates})")
    if alpha is not None and not 0.0 <= alpha <= 1.0:
        raise ValueError(f"--alpha must be between 0 (retriever only) and 1 (LLM only), got {alpha}")


def run_ask(
    question: str,
    *,
    db: Path | None = None,
    chroma_url: str | None = None,
    collection: str = "rankrag",
    candidates: int = 100,
    top_k: int = 5,
    model: str | None = None,
    adapter: str | None = "default",
    alpha: float | None = None,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    as_json: bool = False,
    answerer_adapter: str | None = "default",
    score_threshold: float | None = None,
    not_found_message: str = NOT_FOUND_MESSAGE,
) -> None:
    """Answer ``question`` from the index, streaming to stdout (or printing one JSON object); when no passage
    reaches ``score_threshold``, print ``not_found_message`` without generating."""
    _check_ask_options(question, candidates, top_k, max_new_tokens, alpha)
    check_threshold(score_threshold, "--min-score")
    from rankrag.index import store
    from rankrag.index.search import retrieve_and_rerank
    from rankrag.model.rankrag_model import RankRAGModel

    _quiet_libraries()
    client = store.connect(db, chroma_url, create=False)
    documents = store.open_for_reading(client, collection)
    llm = RankRAGModel.load(
        model,
        adapter=None if adapter == "none" else adapter,
        answerer_adapter=None if answerer_adapter == "none" else answerer_adapter,
    )
    ranked = retrieve_and_rerank(llm, documents, question, candidates=candidates, top_k=top_k, alpha=alpha)
    used = [p for p in ranked if score_threshold is None or p.score >= score_threshold]
    contexts = [p.text for p in used]
    if as_json:
        answer = llm.generate(question, contexts, max_new_tokens=max_new_tokens) if used else not_found_message
        record = {
            "question": question,
            "answer": answer,
            "abstained": not used,
            "contexts": [p.as_json() for p in used],
        }
        print(json.dumps(record, ensure_ascii=False))
        return
    if not used:
        sys.stdout.write(not_found_message + "\n")
        sys.stdout.flush()
        return
    for piece in llm.stream(question, contexts, max_new_tokens=max_new_tokens):
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n\nPassages used (RankRAG score, retrieval similarity):\n")
    for rank, passage in enumerate(used, start=1):
        preview = " ".join(passage.text.split())
        preview = preview if len(preview) <= 160 else preview[:157] + "..."
        source = _display_path(passage.source)
        sys.stdout.write(f"{rank}. [{passage.score:.3f} | {passage.similarity:.3f}] {source}\n   {preview}\n")
    sys.stdout.flush()


def _display_path(source: str) -> str:
    """``source`` relative to the working directory when it lies below it, else as stored."""
    try:
        return str(Path(source).relative_to(Path.cwd()))
    except ValueError:
        return source


def ask_command(
    question: str = typer.Argument(..., help="The question to answer from the index."),
    db: Path | None = typer.Option(None, "--db", help="Directory of the local Chroma database."),
    chroma_url: str | None = typer.Option(None, "--chroma-url", help=URL_HELP),
    collection: str = typer.Option("rankrag", "--collection", help=COLLECTION_HELP),
    candidates: int = candidates_option(
        100, "Chunks retrieved from Chroma; the LLM scores the best of them by similarity (the model's cascade)"
    ),
    top_k: int = typer.Option(5, "--top-k", help="Best reranked chunks the answer is generated from."),
    model: str | None = typer.Option(
        None, "--model", help="Hugging Face id, directory or .gguf (default: the embedded SmolLM2)."
    ),
    adapter: str = typer.Option("default", "--adapter", help="LoRA adapter directory or id, 'default' or 'none'."),
    alpha: float | None = typer.Option(
        None,
        "--alpha",
        help=(
            "Rank by the LLM score fused with the retrieval similarity alone at this weight (1 = LLM only, 0 = "
            "retrieval order), every candidate scored; default: the hybrid ranking with the model's calibrated "
            "weights and cascade."
        ),
    ),
    max_new_tokens: int = typer.Option(DEFAULT_MAX_NEW_TOKENS, "--max-new-tokens", help="Longest answer, in tokens."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object {question, answer, contexts}."),
    answerer_adapter: str = typer.Option("default", "--answerer-adapter", help=ANSWERER_ADAPTER_HELP),
    score_threshold: float | None = typer.Option(
        None,
        "--min-score",
        "--score-threshold",
        help="Use only passages whose relevance probability reaches this; when none does, print the not-found "
        "message instead of an answer (nothing is generated).",
    ),
    not_found_message: str = typer.Option(NOT_FOUND_MESSAGE, "--not-found-message", help="The not-found answer."),
) -> None:
    """Retrieve from the index, rerank with RankRAG, and answer from the best passages."""
    with command_errors():
        run_ask(
            question,
            db=db,
            chroma_url=chroma_url,
            collection=collection,
            candidates=candidates,
            top_k=top_k,
            model=model,
            adapter=adapter,
            alpha=alpha,
            max_new_tokens=max_new_tokens,
            as_json=as_json,
            answerer_adapter=answerer_adapter,
            score_threshold=score_threshold,
            not_found_message=not_found_message,
        )


def register(app: typer.Typer) -> None:
    """Add ``index`` and ``ask`` to the top-level app."""
    app.command("index")(index_command)
    app.command("ask")(ask_command)

"""What every `rankrag` command shares: option help texts, one-line errors, quiet model loading."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rankrag.model.rankrag_model import RankRAGModel

DATA_DIR_HELP = "Evaluation data directory (the shared-data layout); default: $RANKRAG_DATA_DIR."
SPLIT_HELP = "Which queries: dev (reported figures), calib, train or all."
MODEL_HELP = "Model: a Hugging Face id, a local directory or a .gguf file; default: the embedded SmolLM2."
ADAPTER_HELP = "LoRA adapter: 'default' (the shipped one, if any), 'none', or a directory."
LIMIT_HELP = "Use only the first N queries/questions of the split (by id), for quick runs."
DEVICE_HELP = "cpu, cuda, cuda:N or auto."
PROGRESS_HELP = "Show a progress bar on stderr."


def candidates_option(default: int, what: str = "First-stage candidates reranked per query") -> Any:
    """The retrieved-count option every command shares: ``--candidates``, with ``--top-n`` kept as its old name."""
    return typer.Option(default, "--candidates", "--top-n", help=f"{what} (the paper's N; --top-n is the old name).")


def threads_option(what: str) -> Any:
    """The ``--threads`` option of a command that runs a model on the CPU; unset (None) keeps the library's default."""
    return typer.Option(None, "--threads", help=what)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


@contextlib.contextmanager
def command_errors() -> Iterator[None]:
    """Any failure becomes one line on stderr and a non-zero exit (2 for bad input), never a traceback.

    Set RANKRAG_DEBUG=1 to see the traceback instead.
    """
    from rankrag.errors import RankRAGError

    try:
        yield
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except KeyboardInterrupt:
        typer.echo("rankrag: interrupted", err=True)
        raise typer.Exit(130) from None
    except Exception as error:
        if os.environ.get("RANKRAG_DEBUG"):
            raise
        known = isinstance(error, (RankRAGError, ValueError, TypeError, OSError, ImportError))
        prefix = "error" if known else f"unexpected error ({type(error).__name__})"
        typer.echo(f"rankrag: {prefix}: {_one_line(error)}", err=True)
        raise typer.Exit(2 if isinstance(error, (ValueError, TypeError)) else 1) from None


def check_limit(limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be a positive integer, got {limit}")


def quiet_transformers() -> None:
    """No weight-loading bars or advisory logs from transformers on the command's stdout/stderr."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()


def load_model(model: str | None, adapter: str, device: str, answerer_adapter: str = "default") -> RankRAGModel:
    """Load the model quietly (no weight-loading bars from transformers)."""
    from rankrag.model.rankrag_model import RankRAGModel

    quiet_transformers()
    return RankRAGModel.load(
        model,
        adapter=None if adapter == "none" else adapter,
        answerer_adapter=None if answerer_adapter == "none" else answerer_adapter,
        device=device,
    )


ANSWERER_ADAPTER_HELP = (
    "The answerer's own LoRA adapter directory, 'none' (the base weights answer) or 'default' (what the "
    "adapter's calibration records; else the adapter itself)."
)

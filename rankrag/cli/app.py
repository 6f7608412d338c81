"""The `rankrag` command line. Each command group lives in its own module; heavy imports stay lazy."""

from __future__ import annotations

import typer

from rankrag.cli import calibrate as commands_calibrate
from rankrag.cli import eval as commands_eval
from rankrag.cli import export as commands_export
from rankrag.cli import index as commands_index
from rankrag.cli import serve as commands_serve
from rankrag.cli import train as commands_train

app = typer.Typer(
    name="rankrag",
    help="RankRAG: rerank retrieved passages and answer with one LLM.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
commands_index.register(app)
commands_train.register(app)
commands_calibrate.register(app)
commands_export.register(app)
commands_serve.register(app)
app.add_typer(commands_eval.app, name="eval", help="Evaluate reranking and answers against baselines.")


if __name__ == "__main__":
    app()

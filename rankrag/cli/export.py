"""`rankrag export`: write base + adapter merged, for vLLM (safetensors) and llama.cpp (GGUF)."""

from __future__ import annotations

from pathlib import Path

import typer

from rankrag.cli.common import ADAPTER_HELP, MODEL_HELP, command_errors, load_model


def export_command(
    output: Path = typer.Option(..., "--output", help="New directory to write (must not exist, or be empty)."),
    model: str | None = typer.Option(None, "--model", help=MODEL_HELP),
    adapter: str = typer.Option("default", "--adapter", help=ADAPTER_HELP),
    gguf: bool = typer.Option(
        False, "--gguf/--no-gguf", help="Also write OUTPUT/gguf/model.gguf for llama.cpp (models loaded from a .gguf)."
    ),
    gguf_type: str = typer.Option(
        "Q8_0", "--gguf-type", help="Type of the tensors the adapter changed: Q8_0, F16 or F32."
    ),
) -> None:
    """Merge the adapter into the model and write it as a safetensors directory (and a GGUF) to serve.

    `vllm serve OUTPUT` or `rankrag serve --model OUTPUT` then serve the RankRAG
    model; `RankRAGModel.load(OUTPUT)` loads it in-process, with its calibration.
    """
    with command_errors():
        from rankrag.model.export import GGUF_PATH, GGUF_TYPES, check_output, export_model

        if gguf_type not in GGUF_TYPES:
            raise ValueError(f"--gguf-type must be one of {', '.join(GGUF_TYPES)}, got {gguf_type!r}")
        check_output(output)  # before the model loads
        loaded = load_model(model, adapter, "cpu")
        written = export_model(loaded, output, gguf=gguf, gguf_type=gguf_type)
        typer.echo(f"wrote {written}" + (f" and {written / GGUF_PATH}" if gguf else ""))


def register(app: typer.Typer) -> None:
    """Add `rankrag export` to the top-level app."""
    app.command("export")(export_command)

"""`rankrag serve`: llama.cpp's server on the embedded or an exported GGUF, probed, with a fallback for AMX CPUs.

The logic lives in :mod:`rankrag.served.launch`; this module only maps options.
"""

from __future__ import annotations

import typer

from rankrag.cli.common import command_errors, threads_option
from rankrag.served.launch import DEFAULT_ALIAS, DEFAULT_HOST, DEFAULT_N_CTX, DEFAULT_PORT, EXTRA_BUFFERS


def serve_command(
    ctx: typer.Context,
    model: str | None = typer.Option(
        None,
        "--model",
        help="A .gguf file, or a `rankrag export --gguf` directory; default: the embedded SmolLM2 GGUF.",
    ),
    host: str = typer.Option(DEFAULT_HOST, "--host", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(DEFAULT_PORT, "--port", help="Port to listen on."),
    alias: str = typer.Option(DEFAULT_ALIAS, "--alias", help="The served model's name: connect(..., model=ALIAS)."),
    n_ctx: int = typer.Option(
        DEFAULT_N_CTX, "--n-ctx", help="Context window in tokens: connect(..., context_window=N_CTX)."
    ),
    threads: int | None = threads_option("llama.cpp threads (default: llama-cpp-python's, half the cores)."),
    extra_buffers: str = typer.Option(
        "auto",
        "--extra-buffers",
        help="llama.cpp's extra CPU buffer types (AMX, weight repacking): auto (on, and off if the probe request "
        "crashes the server), on or off.",
    ),
) -> None:
    """Serve a GGUF with llama.cpp's server (llama-cpp-python) for `RankRAGModel.connect`, until Ctrl-C.

    The server is checked with a real multi-token request before it is called ready; if that crashes it (llama.cpp's
    AMX kernels on some CPUs), it is restarted with llama.cpp's extra CPU buffer types off. Arguments after `--` go
    to `python -m llama_cpp.server` unchanged. See docs/serving.md.
    """
    with command_errors():
        from rankrag.served.launch import ServeOptions, resolve_answerer_model, resolve_model, serve

        if extra_buffers not in EXTRA_BUFFERS:
            raise ValueError(f"--extra-buffers must be one of {', '.join(EXTRA_BUFFERS)}, got {extra_buffers!r}")
        served = resolve_model(model)
        options = ServeOptions(
            served,
            host=host,
            port=port,
            alias=alias,
            n_ctx=n_ctx,
            threads=threads,
            extra_args=tuple(ctx.args),
            answerer_model=resolve_answerer_model(served),
        )
        code = serve(options, extra_buffers=extra_buffers, say=lambda line: typer.echo(line, err=True))
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add `rankrag serve` to the top-level app."""
    app.command("serve", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(serve_command)

"""Fixtures for the evaluation and calibration tests: the real `rankrag` CLI run in-process.

In-process runs share the session's loaded models (same load arguments -> same instance), so the
end-to-end tests pay for no extra model load. They use the zero-shot model (`--adapter none`), the
`base_model` fixture's instance.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from typer.testing import CliRunner, Result


@pytest.fixture
def run_cli() -> Callable[..., Result]:
    """run_cli("eval", "rerank", ...) -> click Result of the real top-level app."""
    from rankrag.cli.app import app

    runner = CliRunner()

    def run(*args: object) -> Result:
        return runner.invoke(app, [str(a) for a in args])

    return run

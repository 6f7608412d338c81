"""Fixtures for the `rankrag index` / `rankrag ask` tests: a CLI runner and the sample corpus indexed once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from rankrag.cli.demo import SAMPLE_CORPUS


@pytest.fixture
def invoke() -> Callable[..., Result]:
    """Run the real `rankrag` typer app in-process: invoke("index", path, "--db", db)."""
    from rankrag.cli.app import app

    runner = CliRunner()

    def run(*args: object) -> Result:
        return runner.invoke(app, [str(a) for a in args])

    return run


@pytest.fixture(scope="session")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped sample corpus indexed once into a persistent Chroma directory.

    Small chunks keep the LLM's work per `ask` (ranking prompts over every retrieved chunk) cheap on CPU.
    """
    from rankrag.cli.index import run_index

    db = tmp_path_factory.mktemp("sample") / "db"
    run_index([SAMPLE_CORPUS], db=db, chunk_size=300, chunk_overlap=0, show_progress=False)
    return db

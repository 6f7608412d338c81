"""notebooks/langchain_quickstart.ipynb runs top to bottom on the embedded defaults, offline."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).parent.parent.parent / "notebooks" / "langchain_quickstart.ipynb"
KERNEL_NAME = "rankrag-test-venv"


@pytest.fixture
def venv_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec that starts ipykernel with this interpreter, so the notebook sees this venv."""
    from ipykernel.kernelspec import write_kernel_spec

    spec_dir = write_kernel_spec(path=str(tmp_path / "kernels" / KERNEL_NAME))
    assert json.loads((Path(spec_dir) / "kernel.json").read_text())["argv"][0] == sys.executable
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("ANONYMIZED_TELEMETRY", "False")
    return KERNEL_NAME


def test_quickstart_notebook_runs(venv_kernel: str) -> None:
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name=venv_kernel,
        timeout=300,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()
    outputs = "".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )
    assert "shared: True True" in outputs
    assert "Answer:" in outputs and "21 February 1804" in outputs
    assert "Steam_engine#2" in outputs  # the paragraph holding the answer is among the cited sources

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


def test_quickstart_notebook_runs(venv_kernel: str, tmp_path: Path) -> None:
    """Run from an empty directory, as outside a source checkout: its data ships with the package."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    client = NotebookClient(
        notebook,
        kernel_name=venv_kernel,
        timeout=300,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()
    outputs = "".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )
    assert "shared: True True" in outputs
    everything = "".join(str(output) for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs)
    assert "IProgress not found" not in everything  # tqdm's warning without ipywidgets
    assert "Loading weights" not in everything  # the embeddings' bar: under a second of work
    assert "Answer:" in outputs and "21 February 1804" in outputs
    assert "Steam_engine#2" in outputs  # the paragraph holding the answer is among the cited sources
    assert "32 passages indexed" in outputs
    piped = next(cell for cell in notebook.cells if cell.cell_type == "code" and "RunnablePassthrough()" in cell.source)
    assert "Steam_engine#2" in "".join(output.get("text", "") for output in piped.outputs)  # the `|` composition


def test_sample_corpus_ships_the_squad_paragraphs() -> None:
    """The notebook's data, rankrag.sample_corpus, is the fixture's SQuAD paragraphs, with their pids."""
    from rankrag.sample_corpus import articles_dir, passages, titles

    fixture = Path(__file__).parent.parent / "fixtures" / "squad_passages.jsonl"
    squad = {row["pid"]: row for row in map(json.loads, fixture.read_text(encoding="utf-8").splitlines())}
    shipped = passages()
    assert len(shipped) == 32 and titles() == ["Amazon_rainforest", "Kenya", "Steam_engine", "Warsaw"]
    assert all(squad[p.pid]["text"] == p.text and squad[p.pid]["title"] == p.title for p in shipped)
    assert [p.pid for p in passages("Kenya")] == [f"Kenya#{i}" for i in range(8)]
    assert sorted(path.name for path in articles_dir().iterdir()) == [
        "Amazon_rainforest.txt",
        "Kenya.md",
        "Steam_engine.txt",
        "Warsaw.md",
    ]
    with pytest.raises(ValueError, match="no article 'Paris'"):
        passages("Paris")

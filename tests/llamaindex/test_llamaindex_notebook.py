"""notebooks/llamaindex_quickstart.ipynb runs top to bottom, offline, on the embedded defaults."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).parent.parent.parent / "notebooks" / "llamaindex_quickstart.ipynb"
KERNEL_NAME = "rankrag-test-venv"
CALIBRATION = (
    Path(__file__).parent.parent.parent / "rankrag" / "adapters" / "smollm2-135m-rankrag" / "rankrag_calibration.json"
)


def install_kernel_spec(jupyter_dir: Path) -> None:
    """A kernel spec running ipykernel in this interpreter (the project's venv), whatever else is installed."""
    spec_dir = jupyter_dir / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "rankrag test venv",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")


def test_quickstart_notebook_runs_top_to_bottom(tmp_path, monkeypatch):
    install_kernel_spec(tmp_path / "jupyter")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("ANONYMIZED_TELEMETRY", "False")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebook's Chroma DB lands in this test's temp dir

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    workdir = tmp_path / "elsewhere"  # as outside a source checkout: the corpus ships with the package
    workdir.mkdir()
    client = nbclient.NotebookClient(
        notebook,
        kernel_name=KERNEL_NAME,
        timeout=300,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()

    def printed(marker: str, stream: str | None = None) -> str:
        """Everything printed by the code cell whose source contains ``marker`` (to ``stream`` only, if given)."""
        cell = next(c for c in notebook.cells if c.cell_type == "code" and marker in c.source)
        return "".join(
            output.get("text", "")
            for output in cell.outputs
            if output.output_type == "stream" and stream in (None, output.get("name"))
        )

    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert not code_cells[0].outputs, "the setup cell shows a value"  # os.environ.setdefault's 'False' was echoed
    everything = "".join(str(output) for cell in code_cells for output in cell.outputs)
    assert "IProgress not found" not in everything  # tqdm's warning without ipywidgets
    assert "Loading weights" not in everything  # the embeddings' bar: under a second of work

    assert "same model: True" in printed("same model")
    # the printed alpha and the text about the ranking's weights are the shipped calibration's
    calibration = json.loads(CALIBRATION.read_text(encoding="utf-8"))
    assert f"calibrated alpha: {calibration['alpha']}" in printed("same model")
    signals_text = next(c.source for c in notebook.cells if c.cell_type == "markdown" and "three signals" in c.source)
    assert "ships calibrated" in signals_text and "not calibrated" not in signals_text
    assert "hybrid" in calibration
    answer = next(line for line in printed("query_engine.query").splitlines() if line.startswith("answer:"))
    assert "Trevithick" in answer
    streamed = printed("print_response_stream", "stdout").strip()
    assert "East African Community" in streamed
    assert streamed.endswith((".", "!", "?")), f"the streamed answer was cut off: {streamed!r}"

"""`rankrag export`: the shipped adapter merged into a safetensors directory and a GGUF, each scoring like the
in-process model; an occupied target is refused before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from rankrag import RankRAGModel
from rankrag.cli.app import app
from rankrag.model.export import GGUF_PATH, export_model

pytestmark = pytest.mark.timeout(600)

QUESTION = "Who built the first steam locomotive?"
PASSAGES = [
    "Richard Trevithick built the first full-scale working railway steam locomotive in 1804.",
    "Paris is the capital and most populous city of France.",
    "The Amazon rainforest covers much of the Amazon basin of South America.",
    "Steam engines were improved by James Watt in the 18th century.",
]


def test_the_merged_directory_scores_exactly_like_the_loaded_model(
    exported: Path, embedded_model: RankRAGModel
) -> None:
    reloaded = RankRAGModel.load(exported, device="cpu", dtype="float32")
    assert reloaded.spec is not None and reloaded.spec.adapter is None  # the adapter is inside the weights
    assert reloaded.score(QUESTION, PASSAGES) == embedded_model.score(QUESTION, PASSAGES)
    assert reloaded.default_alpha == embedded_model.default_alpha  # the calibration travels with it


def test_the_gguf_carries_the_adapter(exported: Path, embedded_model: RankRAGModel, base_model: RankRAGModel) -> None:
    """Changed tensors are re-quantized (Q8_0), so scores move a little; far less than the adapter moves them."""
    gguf = RankRAGModel.load(exported / GGUF_PATH, device="cpu", dtype="float32", adapter="default")
    assert gguf.spec is not None and gguf.spec.adapter is None  # "default" adds nothing to an exported GGUF
    tuned, zero_shot, served_file = (
        embedded_model.score(QUESTION, PASSAGES),
        base_model.score(QUESTION, PASSAGES),
        gguf.score(QUESTION, PASSAGES),
    )
    assert max(abs(a - b) for a, b in zip(tuned, served_file)) < 0.03
    assert max(abs(a - b) for a, b in zip(tuned, zero_shot)) > 0.2
    assert gguf.default_alpha == embedded_model.default_alpha


def test_an_occupied_output_is_refused_and_left_untouched(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    result = CliRunner().invoke(app, ["export", "--output", str(target)])
    assert result.exit_code == 1 and "already exists" in result.output
    assert [p.name for p in target.iterdir()] == ["notes.txt"] and (target / "notes.txt").read_text() == "mine"


def test_a_bad_gguf_type_is_named(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["export", "--output", str(tmp_path / "new"), "--gguf", "--gguf-type", "Q2"])
    assert result.exit_code == 2 and "--gguf-type" in result.output
    assert not (tmp_path / "new").exists()


def test_gguf_export_needs_a_gguf_base(tiny_model: RankRAGModel, tmp_path: Path) -> None:
    from rankrag.errors import UnsupportedConfigurationError

    model = tiny_model
    with pytest.raises(UnsupportedConfigurationError, match="base GGUF"):
        export_model(model, tmp_path / "out", gguf=True)
    assert not (tmp_path / "out").exists() and list(tmp_path.iterdir()) == []

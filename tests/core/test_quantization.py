"""bitsandbytes 4-bit and 8-bit on CPU, for real: the embedded GGUF is materialised first, lm_head stays plain."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest
import torch

from rankrag import RankRAGModel

pytest.importorskip("bitsandbytes")

QUESTION = "What is the capital of Japan?"
PASSAGES = ["Tokyo is the capital of Japan.", "Bananas are yellow."]
QUANTIZED_LINEAR = {"4bit": "Linear4bit", "8bit": "Linear8bitLt"}


@pytest.fixture(scope="module", params=["4bit", "8bit"])
def quantized(request: pytest.FixtureRequest) -> RankRAGModel:
    return RankRAGModel.load(quantization=request.param, device="cpu")


def test_quantized_instance_is_shared(quantized: RankRAGModel) -> None:
    assert quantized.spec is not None
    assert RankRAGModel.load(quantization=quantized.spec.quantization) is quantized
    assert RankRAGModel.load(quantization=quantized.spec.quantization, dtype="float32", device="cpu") is quantized
    assert RankRAGModel.load() is not quantized


def test_decoder_is_quantized_but_lm_head_is_not(quantized: RankRAGModel, embedded_model: RankRAGModel) -> None:
    assert quantized.spec is not None
    expected = QUANTIZED_LINEAR[quantized.spec.quantization]
    # With the shipped adapter a quantized base stays a PeftModel (LoRA cannot merge into 4/8-bit weights);
    # peft's LoRA wrappers of bitsandbytes layers carry the same class names.
    decoder = quantized.model.get_decoder()
    assert type(decoder.layers[0].self_attn.q_proj).__name__ == expected
    assert type(decoder.layers[-1].mlp.down_proj).__name__ == expected
    head = quantized.model.get_output_embeddings()
    assert type(head) is torch.nn.Linear
    assert head.weight.dtype == torch.float32
    assert quantized.model.get_memory_footprint() < 0.5 * embedded_model.model.get_memory_footprint()


def test_quantized_scores_are_probabilities(quantized: RankRAGModel, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        vocab = quantized.score(QUESTION, PASSAGES, normalization="vocab")
        binary = quantized.score(QUESTION, PASSAGES)
    assert all(math.isfinite(v) and math.isfinite(b) and 0.0 <= v <= b <= 1.0 for v, b in zip(vocab, binary))
    assert len(set(binary)) == 2
    noisy = [r for r in caplog.records if "MatMul8bitLt" in r.getMessage()]
    assert len(noisy) <= 1, "bitsandbytes' per-matmul cast message must be logged at most once"


def test_quantized_model_generates(quantized: RankRAGModel) -> None:
    result = quantized.generate_ids(quantized.answer_prompt_ids(QUESTION, PASSAGES[:1]), max_new_tokens=3)
    assert result.completion_tokens >= 1 and isinstance(result.text, str)


def test_quantized_model_keeps_a_lora_adapter_unmerged(tiny_model_dir: Path, lora_dir: Path) -> None:
    from peft import PeftModel

    adapted = RankRAGModel.load(tiny_model_dir, quantization="4bit", adapter=lora_dir)
    assert isinstance(adapted.model, PeftModel)  # merging into 4-bit weights would lose the adapter's precision
    plain = RankRAGModel.load(tiny_model_dir, quantization="4bit")
    assert adapted is not plain
    adapted_scores = adapted.score(QUESTION, PASSAGES)
    assert all(0.0 <= s <= 1.0 for s in adapted_scores)
    assert adapted_scores != plain.score(QUESTION, PASSAGES)

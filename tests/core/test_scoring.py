"""Scoring on the real embedded SmolLM2: batch/padding invariance, truncation, answer tokens, normalisation."""

from __future__ import annotations

import math

import pytest
import torch

from rankrag import RankRAGModel, ScoringOptions
from rankrag.model.prompts import PromptTemplates, ranking_parts
from rankrag.model.ranking_prompts import answer_token_ids

QUESTION = "What is the capital of Japan?"
TOKYO = "Tokyo is the capital of Japan and its largest city."
# Mixed lengths (a few words to ~90 tokens), not sorted by length.
PASSAGES = [
    TOKYO,
    "Mount Fuji is the highest mountain in Japan. " * 4,
    "Bananas are yellow.",
    "Kyoto was the imperial capital of Japan for more than a thousand years, until the emperor moved "
    "to Tokyo in 1869. " * 2,
    "The Shinkansen connects Tokyo with Osaka in about two and a half hours.",
]


@pytest.fixture(scope="module")
def fp32_model(embedded_model) -> RankRAGModel:  # type: ignore[no-untyped-def]
    """The embedded model in float32 on CPU: the shared instance itself on a CPU-only machine."""
    model = RankRAGModel.load(dtype="float32", device="cpu")
    assert model.model.dtype == torch.float32
    return model


def test_scores_do_not_depend_on_batch_or_padding(fp32_model: RankRAGModel) -> None:
    alone = [fp32_model.score(QUESTION, [passage])[0] for passage in PASSAGES]
    assert len(set(alone)) == len(alone)
    for batch_size in (1, 3, 16):
        batched = fp32_model.score(QUESTION, PASSAGES, batch_size=batch_size)
        worst = max(abs(a - b) for a, b in zip(alone, batched))
        assert worst <= 1e-5, f"batch_size={batch_size}: |alone - batched| = {worst:.2e}"


def test_answer_tokens_come_from_the_tokenizer(fp32_model: RankRAGModel) -> None:
    tokenizer = fp32_model.tokenizer
    true_id, false_id = answer_token_ids(tokenizer, fp32_model.templates)
    assert tokenizer.decode([true_id]) == "True" and tokenizer.decode([false_id]) == "False"
    assert (true_id, false_id) == (tokenizer.encode("True")[0], tokenizer.encode("False")[0])
    # After the raw "Assistant:" the model writes " True", a different token.
    chatqa_true, chatqa_false = answer_token_ids(tokenizer, PromptTemplates(style="chatqa"))
    assert tokenizer.decode([chatqa_true]) == " True" and tokenizer.decode([chatqa_false]) == " False"
    yes_id, no_id = answer_token_ids(tokenizer, PromptTemplates(true_word="Yes", false_word="No"))
    assert tokenizer.decode([yes_id]) == "Yes" and tokenizer.decode([no_id]) == "No"


def test_score_is_p_true_of_the_next_token(fp32_model: RankRAGModel) -> None:
    """Both normalisations against the full forward pass; vocab <= binary, both in [0, 1]."""
    passages = PASSAGES[:3]
    vocab = fp32_model.score(QUESTION, passages, normalization="vocab")
    binary = fp32_model.score(QUESTION, passages, normalization="binary")
    assert all(0.0 <= v <= b <= 1.0 for v, b in zip(vocab, binary))
    true_id = fp32_model.tokenizer.encode("True")[0]
    false_id = fp32_model.tokenizer.encode("False")[0]
    [ids] = fp32_model.encode_ranking(QUESTION, [TOKYO])
    with torch.inference_mode():
        logits = fp32_model.model(input_ids=torch.tensor([ids])).logits[0, -1].float()
    assert vocab[0] == pytest.approx(torch.softmax(logits, -1)[true_id].item(), rel=1e-4)
    assert binary[0] == pytest.approx(torch.softmax(logits[[true_id, false_id]], -1)[0].item(), abs=1e-5)


def test_huge_passage_is_truncated_inside_the_passage(fp32_model: RankRAGModel) -> None:
    tokenizer = fp32_model.tokenizer
    huge = ("Tokyo is a large city with many districts and trains. " * 2000)[:100_000]
    assert len(huge) == 100_000
    options = fp32_model.scoring_options
    parts = ranking_parts(tokenizer, fp32_model.templates, QUESTION)
    suffix = tokenizer.encode(parts.suffix, add_special_tokens=False)
    prefix = tokenizer.encode(parts.prefix, add_special_tokens=False)

    [ids] = fp32_model.encode_ranking(QUESTION, [huge])
    assert len(ids) <= options.max_length
    assert ids[-len(suffix) :] == suffix
    assert ids[: len(prefix)] == prefix
    passage_ids = ids[len(prefix) : -len(suffix)]
    assert passage_ids == tokenizer.encode(huge, add_special_tokens=False)[: options.max_passage_tokens]
    text = tokenizer.decode(ids)
    assert text.endswith(
        f"For the question {QUESTION}, access whether the passage is relevant to the question. "
        "Return True if relevant, otherwise False.<|im_end|>\n<|im_start|>assistant\n"
    )

    tight = fp32_model.with_options(scoring_options=ScoringOptions(max_length=200))
    [cut] = tight.encode_ranking(QUESTION, [huge])
    assert len(cut) == 200 and cut[-len(suffix) :] == suffix and cut[: len(prefix)] == prefix

    [score] = fp32_model.score(QUESTION, [huge])
    assert math.isfinite(score) and 0.0 <= score <= 1.0


def test_relevant_passage_outranks_unrelated_ones(fp32_model: RankRAGModel) -> None:
    ranked = fp32_model.rerank(QUESTION, [PASSAGES[2], TOKYO, "Paris is the capital of France."])
    assert ranked[0].text == TOKYO and ranked[0].index == 1
    assert [p.score for p in ranked] == sorted((p.score for p in ranked), reverse=True)

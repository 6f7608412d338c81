"""Scoring mechanics on a tiny randomly initialised Llama passed as a (model, tokenizer) pair."""

from __future__ import annotations

import pytest
import torch

from rankrag import PassageTooLongError, RankRAGModel, ScoringOptions
from rankrag.model.batching import length_sorted_batches
from rankrag.model.ranking_prompts import RankingEncoder, answer_token_ids

QUESTION = "Which river flows through the old town?"
# Mixed lengths so batches need padding; the order is not sorted by length.
PASSAGES = ["word " * n + f"end {n}" for n in (1, 60, 5, 220, 25, 3, 90, 12)]


def reference_logits(model, ids: list[int]) -> torch.Tensor:  # type: ignore[no-untyped-def]
    """Next-token logits of one unpadded prompt through the model's ordinary forward pass."""
    with torch.inference_mode():
        return model(input_ids=torch.tensor([ids])).logits[0, -1].float()


def test_same_pair_gives_the_same_instance(tiny_pair, tiny_model, tiny_llama_factory) -> None:
    assert RankRAGModel.load(tiny_pair) is tiny_model
    other = tiny_llama_factory(tiny_pair[1], seed=1)
    assert RankRAGModel.load((other, tiny_pair[1])) is not tiny_model


def test_scores_do_not_depend_on_batch_or_padding(tiny_model) -> None:
    alone = [tiny_model.score(QUESTION, [p])[0] for p in PASSAGES]
    assert max(alone) - min(alone) > 0.05, "scores must differ between passages for this test to mean anything"
    for batch_size in (1, 2, 3, 16):
        batched = tiny_model.score(QUESTION, PASSAGES, batch_size=batch_size)
        assert batched == pytest.approx(alone, abs=1e-5), f"batch_size={batch_size}"


def test_length_sorted_batches_restore_the_input_order(tiny_model) -> None:
    encoded = tiny_model.encode_ranking(QUESTION, PASSAGES)
    batches = length_sorted_batches(encoded, 3)
    assert sorted(i for batch in batches for i in batch) == list(range(len(PASSAGES)))
    lengths = [len(encoded[i]) for batch in batches for i in batch]
    assert lengths == sorted(lengths, reverse=True)
    assert all(len(batch) <= 3 for batch in batches)

    reversed_scores = tiny_model.score(QUESTION, PASSAGES[::-1], batch_size=3)
    assert reversed_scores[::-1] == pytest.approx(tiny_model.score(QUESTION, PASSAGES, batch_size=3), abs=1e-5)


def test_scores_match_the_full_forward_pass(tiny_pair, tiny_model) -> None:
    model, _ = tiny_pair
    true_id, false_id = answer_token_ids(tiny_model.tokenizer, tiny_model.templates)
    encoded = tiny_model.encode_ranking(QUESTION, PASSAGES[:3])
    vocab = tiny_model.score(QUESTION, PASSAGES[:3], normalization="vocab")
    binary = tiny_model.score(QUESTION, PASSAGES[:3], normalization="binary")
    for ids, vocab_score, binary_score in zip(encoded, vocab, binary):
        logits = reference_logits(model, ids)
        assert vocab_score == pytest.approx(torch.softmax(logits, -1)[true_id].item(), rel=1e-4, abs=1e-7)
        pair = torch.softmax(logits[[true_id, false_id]], -1)
        assert binary_score == pytest.approx(pair[0].item(), abs=1e-5)
        assert vocab_score <= binary_score


def test_scoring_never_runs_the_output_layer_over_all_positions(tiny_pair, tiny_model) -> None:
    model, _ = tiny_pair
    calls: list[tuple[int, ...]] = []
    hook = model.get_output_embeddings().register_forward_hook(lambda _m, _i, out: calls.append(tuple(out.shape)))
    try:
        tiny_model.score(QUESTION, PASSAGES, normalization="vocab")
    finally:
        hook.remove()
    assert calls == []


def test_long_passage_is_cut_inside_the_passage(tiny_model) -> None:
    options = ScoringOptions(max_length=160, max_passage_tokens=384)
    handle = tiny_model.with_options(scoring_options=options)
    encoder = RankingEncoder(handle.tokenizer, handle.templates, options)
    prefix, suffix = encoder.prefix_and_suffix(QUESTION)
    [ids] = handle.encode_ranking(QUESTION, ["lorem ipsum dolor " * 5000])
    assert len(ids) == 160
    assert ids[: len(prefix)] == prefix
    assert ids[-len(suffix) :] == suffix
    assert 0.0 <= handle.score(QUESTION, ["lorem ipsum dolor " * 5000])[0] <= 1.0


def test_question_first_truncation_keeps_question_and_suffix(tiny_model) -> None:
    from rankrag import PromptTemplates

    templates = PromptTemplates(question_first=True)
    options = ScoringOptions(max_length=200)
    prefix, suffix = RankingEncoder(tiny_model.tokenizer, templates, options).prefix_and_suffix(QUESTION)
    assert QUESTION in tiny_model.tokenizer.decode(prefix)
    handle = tiny_model.with_options(templates=templates, scoring_options=options)
    [ids] = handle.encode_ranking(QUESTION, ["lorem ipsum dolor " * 5000])
    assert len(ids) == 200 and ids[: len(prefix)] == prefix and ids[-len(suffix) :] == suffix


def test_max_passage_tokens_caps_each_passage(tiny_model) -> None:
    options = ScoringOptions(max_passage_tokens=8)
    prefix, suffix = RankingEncoder(tiny_model.tokenizer, tiny_model.templates, options).prefix_and_suffix(QUESTION)
    handle = tiny_model.with_options(scoring_options=options)
    short, long = handle.encode_ranking(QUESTION, ["one two", "word " * 100])
    passage_tokens = handle.tokenizer.encode("word " * 100, add_special_tokens=False)
    assert long == prefix + passage_tokens[:8] + suffix
    assert short == prefix + handle.tokenizer.encode("one two", add_special_tokens=False) + suffix


def test_truncation_off_refuses_long_passages(tiny_model) -> None:
    handle = tiny_model.with_options(scoring_options=ScoringOptions(max_passage_tokens=8, truncate=False))
    with pytest.raises(PassageTooLongError, match=r"passages\[1\]"):
        handle.score(QUESTION, ["short", "word " * 100])


def test_question_that_leaves_no_room_is_a_clear_error(tiny_model) -> None:
    handle = tiny_model.with_options(scoring_options=ScoringOptions(max_length=64))
    with pytest.raises(ValueError, match="max_length=64"):
        handle.score(QUESTION, ["a passage"])


def test_pair_in_training_mode_scores_deterministically(smollm2_tokenizer) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(
        n_embd=64,
        n_layer=2,
        n_head=4,
        vocab_size=len(smollm2_tokenizer),
        n_positions=1024,
        bos_token_id=smollm2_tokenizer.bos_token_id,
        eos_token_id=smollm2_tokenizer.eos_token_id,
    )
    model = GPT2LMHeadModel(config)  # freshly built models are in training mode, with dropout 0.1
    assert model.training
    ranker = RankRAGModel.load((model, smollm2_tokenizer))
    assert ranker.score(QUESTION, PASSAGES[:2]) == ranker.score(QUESTION, PASSAGES[:2])


def test_pair_whose_tokenizer_has_no_pad_token(smollm2_dir, tiny_pair) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    tokenizer.pad_token = None
    assert tokenizer.pad_token_id is None
    ranker = RankRAGModel.load((tiny_pair[0], tokenizer))
    reference = RankRAGModel.load(tiny_pair)
    assert ranker.score(QUESTION, PASSAGES[:3]) == pytest.approx(reference.score(QUESTION, PASSAGES[:3]), abs=1e-6)


def test_generation_mechanics_on_the_tiny_model(tiny_model) -> None:
    prompt = tiny_model.answer_prompt_ids(QUESTION, ["a passage"])
    result = tiny_model.generate_ids(prompt, max_new_tokens=4)
    assert result.prompt_tokens == len(prompt)
    assert 1 <= result.completion_tokens <= 4
    assert isinstance(result.text, str)
    assert result.finish_reason in ("stop", "length")


def test_rerank_sorts_keeps_indices_and_cuts_to_top_k(tiny_model) -> None:
    scores = tiny_model.score(QUESTION, PASSAGES)
    ranked = tiny_model.rerank(QUESTION, PASSAGES, alpha=1.0)  # LLM only (an uncalibrated default fuses)
    assert [p.index for p in ranked] == sorted(range(len(PASSAGES)), key=lambda i: -scores[i])
    assert all(p.text == PASSAGES[p.index] and p.metadata["llm_score"] == p.score for p in ranked)
    top = tiny_model.rerank(QUESTION, PASSAGES, top_k=3, alpha=1.0)
    assert [p.index for p in top] == [p.index for p in ranked[:3]]
    from_generator = tiny_model.rerank(QUESTION, (p for p in PASSAGES), top_k=3, alpha=1.0)
    assert [(p.index, p.text) for p in from_generator] == [(p.index, p.text) for p in top]


def test_rerank_fusion_with_the_first_stage(tiny_model) -> None:
    retrieval_order = tiny_model.rerank(QUESTION, PASSAGES, alpha=0.0)
    assert [p.index for p in retrieval_order] == list(range(len(PASSAGES)))
    first_stage = [float(i) for i in range(len(PASSAGES))]  # higher is better: the last passage is best
    by_retriever = tiny_model.rerank(QUESTION, PASSAGES, alpha=0.0, first_stage_scores=first_stage)
    assert [p.index for p in by_retriever] == list(reversed(range(len(PASSAGES))))
    half = tiny_model.rerank(QUESTION, PASSAGES, alpha=0.5, first_stage_scores=first_stage)
    for item in half:
        expected = 0.5 * item.metadata["llm_score"] + 0.5 * item.index / (len(PASSAGES) - 1)
        assert item.score == pytest.approx(expected, abs=1e-9)


def test_rank_scored_ranks_scores_already_computed_as_rerank_does(tiny_model) -> None:
    scores = tiny_model.score(QUESTION, PASSAGES)
    first_stage = [float(i) for i in range(len(PASSAGES))]
    for alpha in (None, 0.5, 1.0):
        expected = tiny_model.rerank(QUESTION, PASSAGES, top_k=3, first_stage_scores=first_stage, alpha=alpha)
        again = tiny_model.rank_scored(
            PASSAGES, scores, query=QUESTION, top_k=3, first_stage_scores=first_stage, alpha=alpha
        )
        assert [(p.index, p.text) for p in again] == [(p.index, p.text) for p in expected]
        assert [p.score for p in again] == pytest.approx([p.score for p in expected], abs=1e-6)
    with pytest.raises(ValueError, match="3 scores for"):
        tiny_model.rank_scored(PASSAGES, scores[:3])


async def test_async_calls_match_sync_calls(tiny_model) -> None:
    assert await tiny_model.ascore(QUESTION, PASSAGES) == pytest.approx(tiny_model.score(QUESTION, PASSAGES), abs=1e-5)
    ranked = await tiny_model.arerank(QUESTION, (p for p in PASSAGES), top_k=2)
    assert [p.index for p in ranked] == [p.index for p in tiny_model.rerank(QUESTION, PASSAGES, top_k=2)]


def test_an_uncalibrated_model_ranks_with_the_uncalibrated_relevance_models_by_default(tiny_model) -> None:
    from rankrag.model.rankrag_model import UNCALIBRATED_ALPHA, UNCALIBRATED_HYBRID, UNCALIBRATED_RELEVANCE

    assert tiny_model.calibration is None and tiny_model.default_alpha == UNCALIBRATED_ALPHA == 0.25
    assert tiny_model.hybrid_weights() == UNCALIBRATED_HYBRID["lexical"]
    assert tiny_model.relevance_models() == UNCALIBRATED_RELEVANCE["lexical"]
    by_default = tiny_model.rerank(QUESTION, PASSAGES)
    assert [(p.index, p.score) for p in by_default] != [
        (p.index, p.score) for p in tiny_model.rerank(QUESTION, PASSAGES, weights=UNCALIBRATED_HYBRID["lexical"])
    ]
    assert [(p.index, p.score) for p in by_default] != [
        (p.index, p.score) for p in tiny_model.rerank(QUESTION, PASSAGES, alpha=1.0)
    ]

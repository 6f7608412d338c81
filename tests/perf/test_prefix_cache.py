"""Shared-prefix KV caching gives the scores of full prompts (real embedded model, float32)."""

from __future__ import annotations

import inspect
from dataclasses import replace

import pytest
import torch
from transformers import DynamicCache, LlamaModel

from rankrag import PromptTemplates
from rankrag.model import prefix_kv as prefix_cache
from rankrag.model.ranking_prompts import RankingEncoder, split_prompts

QUESTION = "What do scientists learn from sediment deposits in the Amazon basin?"


def uncached(handle):  # type: ignore[no-untyped-def]
    return handle.with_options(scoring_options=replace(handle.scoring_options, prefix_cache=False))


class DecoderCalls:
    """Records the (batch, width) of every decoder forward pass."""

    def __init__(self, model) -> None:  # type: ignore[no-untyped-def]
        self.shapes: list[tuple[int, int]] = []
        self._hook = model.model.get_decoder().register_forward_pre_hook(self._record, with_kwargs=True)

    def _record(self, _module, _args, kwargs):  # type: ignore[no-untyped-def]
        self.shapes.append(tuple(kwargs["input_ids"].shape))

    def __enter__(self) -> DecoderCalls:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._hook.remove()


@pytest.mark.parametrize("question_first", [False, True], ids=["passage-first", "question-first"])
def test_cached_scores_equal_unpadded_full_prompts(fp32_model, squad_passages, question_first: bool) -> None:
    handle = fp32_model.with_options(templates=PromptTemplates(question_first=question_first))
    passages = squad_passages[:5]
    reference = uncached(handle).score(QUESTION, passages, batch_size=1)  # each prompt alone: no padding
    assert max(reference) - min(reference) > 0.01, "scores must differ between passages for the test to mean anything"
    cached = handle.score(QUESTION, passages, batch_size=4)  # padded batches behind the cached prefix
    assert cached == pytest.approx(reference, abs=1e-5)


def test_cached_vocab_normalization_equals_uncached(short_prompt_model, squad_passages) -> None:
    passages = squad_passages[:3]
    reference = uncached(short_prompt_model).score(QUESTION, passages, normalization="vocab")
    cached = short_prompt_model.score(QUESTION, passages, normalization="vocab")
    assert cached == pytest.approx(reference, rel=1e-4, abs=1e-7)


def test_prefix_runs_once_and_batches_hold_only_tails(short_prompt_model, squad_passages) -> None:
    passages = squad_passages[:3]
    handle = short_prompt_model
    encoder = RankingEncoder(handle.tokenizer, handle.templates, handle.scoring_options)
    prompts = split_prompts(encoder, QUESTION, passages)
    with DecoderCalls(short_prompt_model) as calls:
        short_prompt_model.score(QUESTION, passages, batch_size=2)
    longest_tail = max(len(tail) for tail in prompts.tails)
    assert calls.shapes[0] == (1, len(prompts.prefix))
    rows = [batch for batch, _ in calls.shapes[1:]]
    assert sum(rows) == len(passages) and max(rows) <= 2  # every tail once, batches of at most batch_size
    assert all(width <= longest_tail for _, width in calls.shapes[1:])


def test_question_first_puts_the_question_in_the_shared_prefix(fp32_model) -> None:
    encoder = RankingEncoder(fp32_model.tokenizer, PromptTemplates(question_first=True), fp32_model.scoring_options)
    prompts = split_prompts(encoder, QUESTION, ["a passage"])
    question_ids = fp32_model.tokenizer.encode(" sediment deposits", add_special_tokens=False)
    prefix = list(prompts.prefix)
    assert any(prefix[i : i + len(question_ids)] == question_ids for i in range(len(prefix)))


def test_split_prompts_are_the_encoder_prompts(fp32_model, squad_passages) -> None:
    for templates in (PromptTemplates(), PromptTemplates(question_first=True), PromptTemplates(style="chatqa")):
        encoder = RankingEncoder(fp32_model.tokenizer, templates, fp32_model.scoring_options)
        prompts = split_prompts(encoder, QUESTION, squad_passages)
        assert prompts.full() == encoder.encode(QUESTION, squad_passages)


def test_models_whose_cache_cannot_be_shared_score_full_prompts(
    short_prompt_model, squad_passages, monkeypatch: pytest.MonkeyPatch
) -> None:
    passages = squad_passages[:3]
    cached = short_prompt_model.score(QUESTION, passages)
    monkeypatch.setattr(prefix_cache, "_broadcastable", lambda _cache: False)
    encoded = short_prompt_model.encode_ranking(QUESTION, passages)
    with DecoderCalls(short_prompt_model) as calls:
        fallback = short_prompt_model.score(QUESTION, passages)
    assert fallback == pytest.approx(cached, abs=1e-5)
    after_probe = calls.shapes[1:]
    assert sum(rows for rows, _ in after_probe) == 3
    assert max(width for _, width in after_probe) == max(len(ids) for ids in encoded)  # full prompts, not tails


def test_cache_keyword_follows_the_forward_signature() -> None:
    class NewStyle(torch.nn.Module):
        def forward(self, input_ids=None, cache=None, **kwargs):  # type: ignore[no-untyped-def]
            return None

    class OldStyle(torch.nn.Module):
        def forward(self, input_ids=None, past_key_values=None, **kwargs):  # type: ignore[no-untyped-def]
            return None

    assert prefix_cache._cache_keyword(NewStyle) == "cache"
    assert prefix_cache._cache_keyword(OldStyle) == "past_key_values"
    library_renamed = "cache" in inspect.signature(LlamaModel.forward).parameters
    assert prefix_cache._cache_keyword(LlamaModel) == ("cache" if library_renamed else "past_key_values")


def test_sliding_window_overflowed_by_the_prefix_is_not_broadcast() -> None:
    states = torch.zeros(1, 1, 6, 2)
    fits = DynamicCache(ddp_cache_data=[(states, states, torch.tensor([8]))])
    overflowed = DynamicCache(ddp_cache_data=[(states, states, torch.tensor([4]))])  # keeps only 3 of 6 tokens
    assert prefix_cache._broadcastable(fits)
    assert not prefix_cache._broadcastable(overflowed)


def test_expanded_prefix_leaves_the_prefix_cache_untouched(short_prompt_model) -> None:
    state = prefix_cache.compute_prefix(short_prompt_model.model, [1, 2, 3, 4])
    assert state is not None
    before = [layer.keys.clone() for layer in state.cache.layers]
    batch = state.expanded(3)
    batch.update(torch.ones_like(batch.layers[0].keys[:, :, :1]), torch.ones_like(batch.layers[0].values[:, :, :1]), 0)
    assert batch.get_seq_length() == 5 and batch.layers[0].keys.shape[0] == 3
    assert all(torch.equal(layer.keys, old) for layer, old in zip(state.cache.layers, before))
    assert state.cache.get_seq_length() == 4

"""The `llm_rerank` baseline of `rankrag eval rerank` (rankrag_llamaindex.llm_rerank_baseline): parsing and order.

The replies are scripted (a fixed LlamaIndex LLM), so the tests check the baseline's own logic, not what
the 135M model happens to write; the end-to-end run on the real model is in tests/eval/test_eval_cli.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core.base.llms.types import CompletionResponse, CompletionResponseGen, LLMMetadata
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.llms.custom import CustomLLM

from rankrag.data.datasets import Candidate, RerankQuery
from rankrag.eval.rerank import llm_rerank_system, load_llm_rerank_baseline
from rankrag_llamaindex import RankRAGLLM
from rankrag_llamaindex.llm_rerank_baseline import LLMRerankSystem


class ScriptedLLM(CustomLLM):
    """Answers every prompt with the same text."""

    reply: str = ""

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(context_window=4096, num_output=128)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=self.reply)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        yield CompletionResponse(text=self.reply, delta=self.reply)


@pytest.fixture(scope="module")
def system(embedded_model: Any) -> LLMRerankSystem:
    return LLMRerankSystem(embedded_model)


def _query(n: int) -> RerankQuery:
    return RerankQuery(
        "q1", "Who wrote Hamlet?", [Candidate(f"p{i}", f"passage {i}", float(n - i), 0) for i in range(n)]
    )


def test_the_eval_loader_builds_the_baseline_on_the_shared_model(embedded_model: Any) -> None:
    assert load_llm_rerank_baseline().LLMRerankSystem is LLMRerankSystem
    built = llm_rerank_system(embedded_model)
    assert isinstance(built, LLMRerankSystem)
    assert isinstance(built.llm, RankRAGLLM) and built.llm.model is embedded_model


def test_choices_are_parsed_line_by_line_dropping_repeats_and_out_of_range(system: LLMRerankSystem) -> None:
    reply = "Doc: 2, Relevance: 8\nsome chatter\nDoc: 9, Relevance: 7\nDoc: 2, Relevance: 1\nDoc: 1, Relevance: 3"
    assert system.parse_choices(reply, 3) == ([2, 1], [8.0, 3.0])
    assert system.parse_choices("no format at all", 3) == ([], [])


def test_unpicked_passages_follow_in_first_stage_order(embedded_model: Any) -> None:
    system = LLMRerankSystem(embedded_model, batch_size=10)
    system.llm = ScriptedLLM(reply="Doc: 3, Relevance: 9\nDoc: 1, Relevance: 4")  # type: ignore[assignment]
    assert system.rank(_query(4)) == [2, 0, 1, 3]
    stats = system.stats.as_dict()
    assert stats["batches"] == 1 and stats["batches_without_choices"] == 0
    assert stats["passages_unranked_kept_in_first_stage_order"] == 2
    assert stats["example_replies"] == ["Doc: 3, Relevance: 9\nDoc: 1, Relevance: 4"]

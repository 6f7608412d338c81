"""The ``llm_rerank`` baseline of ``rankrag eval rerank``: LlamaIndex's ``LLMRerank`` driven by ``RankRAGLLM``.

It lives here, not in :mod:`rankrag.eval`, because the core knows no framework;
:func:`rankrag.eval.rerank.load_llm_rerank_baseline` imports this module only when the ``llm_rerank``
system is asked for (it needs the ``[llamaindex]`` extra).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from llama_index.core.indices.utils import default_parse_choice_select_answer_fn
from llama_index.core.postprocessor import LLMRerank
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from rankrag_llamaindex.llm import RankRAGLLM

if TYPE_CHECKING:
    from rankrag.data.datasets import RerankQuery
    from rankrag.model.rankrag_model import RankRAGModel

LLM_RERANK_BATCH_SIZE = 10
LLM_RERANK_MAX_NEW_TOKENS = 128
EXAMPLE_REPLIES = 2


@dataclass
class LLMRerankStats:
    """How often LlamaIndex's choice parser found nothing usable in the model's reply."""

    batches: int = 0
    batches_without_choices: int = 0
    passages_unranked: int = 0
    example_replies: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "batches": self.batches,
            "batches_without_choices": self.batches_without_choices,
            "passages_unranked_kept_in_first_stage_order": self.passages_unranked,
            "example_replies": self.example_replies,
        }


class LLMRerankSystem:
    """LlamaIndex's ``LLMRerank`` driven by ``RankRAGLLM`` on the same loaded model.

    The stock choice parser is applied line by line so that a malformed line cannot shift the pairing of
    document numbers and relevances; numbers outside the batch and repeats are dropped. Passages the
    model did not pick follow the picked ones in first-stage order (counted in :attr:`stats`).
    """

    def __init__(self, model: RankRAGModel, *, batch_size: int = LLM_RERANK_BATCH_SIZE) -> None:
        self.stats = LLMRerankStats()
        self.llm = RankRAGLLM(model=model, max_new_tokens=LLM_RERANK_MAX_NEW_TOKENS)
        self.batch_size = batch_size

    def parse_choices(self, answer: str, num_choices: int) -> tuple[list[int], list[float]]:
        self.stats.batches += 1
        if len(self.stats.example_replies) < EXAMPLE_REPLIES:
            self.stats.example_replies.append(answer)
        numbers: list[int] = []
        relevances: list[float] = []
        for line in answer.splitlines():
            found, scores = default_parse_choice_select_answer_fn(line, num_choices)
            if len(found) == 1 and len(scores) == 1 and 1 <= found[0] <= num_choices and found[0] not in numbers:
                numbers.append(found[0])
                relevances.append(scores[0])
        if not numbers:
            self.stats.batches_without_choices += 1
        return numbers, relevances

    def rank(self, query: RerankQuery) -> list[int]:
        """Candidate positions, best first."""
        nodes = [
            NodeWithScore(node=TextNode(text=c.text, id_=str(position)), score=c.first_stage_score)
            for position, c in enumerate(query.candidates)
        ]
        reranker = LLMRerank(
            llm=self.llm,
            choice_batch_size=self.batch_size,
            top_n=len(nodes),
            parse_choice_select_answer_fn=self.parse_choices,
        )
        picked = [int(n.node.node_id) for n in reranker.postprocess_nodes(nodes, QueryBundle(query.query))]
        seen = set(picked)
        rest = [position for position in range(len(nodes)) if position not in seen]
        self.stats.passages_unranked += len(rest)
        return picked + rest

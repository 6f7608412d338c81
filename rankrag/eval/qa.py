"""Answer evaluation: generate from several choices of top-k contexts and score the answers.

``retrieval_order``: the first k contexts as the data set lists them; ``rankrag``: the k contexts the
model ranks highest (LLM score only, ``alpha=1``: the listed order of these sets is not a retriever's
ranking, SQuAD and PubMedQA even shuffle it, so fusing with it would only add noise); ``dense``: the k
contexts with the highest cosine of the model's embedding model; ``hybrid``: the model's hybrid ranking of the
LLM score and the cosine, with the weights for a dense first stage (the cosine takes the retriever's place,
for the same reason: the listed order is no retriever's); ``oracle``: the gold (``is_gold``) contexts, at most
k, in listed order. Each gets the same generation prompt.

Scores: SQuAD exact match and F1, the best over the gold answers. PubMedQA: the first yes / no / maybe
in the reply against the label; ``em`` is accuracy and ``f1`` is macro-F1 over the three labels
(PubMedQA's two official metrics). ``recall@k``: share of an item's gold contexts among the k given to
the generator, averaged over items that have gold contexts.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import fmean
from typing import TYPE_CHECKING, Any

from rankrag.data.datasets import QAContext, QAItem
from rankrag.eval.metrics import exact_match, f1_score, macro_f1, recall_of_gold, yes_no_maybe
from rankrag.eval.rerank import parse_systems

if TYPE_CHECKING:
    from rankrag.model.rankrag_model import RankRAGModel

QA_SYSTEMS = ("retrieval_order", "dense", "rankrag", "hybrid", "oracle")
DEFAULT_QA_SYSTEMS = ("retrieval_order", "rankrag", "oracle")
YES_NO_MAYBE_DATASETS = ("pubmedqa_pqal",)
YES_NO_MAYBE_INSTRUCTION = "{question} Answer the above question with yes, no or maybe."
QA_MAX_NEW_TOKENS = 32


def context_text(context: QAContext) -> str:
    """What the model sees of a context: the title (these are Wikipedia/PubMed pages) then the text."""
    return f"{context.title}\n{context.text}" if context.title else context.text


@dataclass
class SystemAnswers:
    predictions: list[str] = field(default_factory=list)
    recalls: list[float] = field(default_factory=list)
    seconds: float = 0.0


def choose_contexts(model: RankRAGModel, item: QAItem, system: str, top_k: int) -> list[int]:
    """Positions of the contexts ``system`` gives the generator."""
    if system == "retrieval_order":
        return list(range(min(top_k, len(item.contexts))))
    if system == "oracle":
        return [i for i, context in enumerate(item.contexts) if context.is_gold][:top_k]
    texts = [context_text(c) for c in item.contexts]
    if system == "rankrag":
        return [p.index for p in model.rerank(item.question, texts, top_k=top_k, alpha=1.0)]
    if system == "hybrid":
        return [p.index for p in model.rerank(item.question, texts, top_k=top_k, first_stage="dense")]
    if system == "dense":
        if model.embedder is None:
            raise ValueError("the dense system needs an embedding model; this model has embedding_model=None")
        similarities = model.embedder.similarities(item.question, texts)
        return sorted(range(len(texts)), key=lambda i: (-similarities[i], i))[:top_k]
    raise ValueError(f"unknown QA system {system!r}; choose from {', '.join(QA_SYSTEMS)}")


def generation_model(model: RankRAGModel, dataset: str) -> RankRAGModel:
    """The model handle to answer ``dataset`` with: yes/no/maybe sets say so in the instruction."""
    if dataset not in YES_NO_MAYBE_DATASETS:
        return model
    return model.with_options(templates=model.templates.with_options(generation_instruction=YES_NO_MAYBE_INSTRUCTION))


def score_answers(dataset: str, predictions: Sequence[str], items: Sequence[QAItem]) -> tuple[float, float]:
    """(em, f1) of the predictions; for yes/no/maybe sets (accuracy, macro-F1)."""
    if not items:
        return 0.0, 0.0
    if dataset in YES_NO_MAYBE_DATASETS:
        labels = [yes_no_maybe(p) for p in predictions]
        gold = [item.answers[0].strip().lower() for item in items]
        return fmean(float(p == g) for p, g in zip(labels, gold)), macro_f1(labels, gold)
    em = fmean(exact_match(p, item.answers) for p, item in zip(predictions, items))
    f1 = fmean(f1_score(p, item.answers) for p, item in zip(predictions, items))
    return em, f1


def evaluate_qa(
    model: RankRAGModel,
    dataset: str,
    items: Sequence[QAItem],
    *,
    top_k: int = 5,
    split: str | None = None,
    max_new_tokens: int = QA_MAX_NEW_TOKENS,
    progress: bool = True,
    systems: Sequence[str] = DEFAULT_QA_SYSTEMS,
) -> dict[str, Any]:
    """Generate and score answers for every item with each of ``systems``; returns the JSON report."""
    from tqdm.auto import tqdm

    systems = parse_systems(systems, QA_SYSTEMS)
    if top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k}")
    if not items:
        raise ValueError(f"no questions in {dataset!r} for split {split or 'all'!r}")
    generator = generation_model(model, dataset)
    answers = {system: SystemAnswers() for system in systems}
    with_gold = 0
    for item in tqdm(items, desc=f"qa {dataset}", unit="question", disable=not progress, dynamic_ncols=True):
        total_gold = sum(c.is_gold for c in item.contexts)
        with_gold += total_gold > 0
        for system in systems:
            start = time.perf_counter()
            chosen = choose_contexts(model, item, system, top_k)
            texts = [context_text(item.contexts[i]) for i in chosen]
            prediction = generator.generate(item.question, texts, max_new_tokens=max_new_tokens) if texts else ""
            result = answers[system]
            result.seconds += time.perf_counter() - start
            result.predictions.append(prediction)
            recall = recall_of_gold([item.contexts[i].is_gold for i in chosen], total_gold)
            if recall is not None:
                result.recalls.append(recall)
    figures = {}
    for system, result in answers.items():
        em, f1 = score_answers(dataset, result.predictions, items)
        figures[system] = {"em": em, "f1": f1, "recall@k": fmean(result.recalls) if result.recalls else 0.0}
    return {
        "dataset": dataset,
        "n_questions": len(items),
        "top_k": top_k,
        "model": model.name,
        "systems": figures,
        "split": split or "all",
        "metric_note": _metric_note(dataset),
        "seconds_per_question": {s: r.seconds / len(items) for s, r in answers.items()},
        "n_questions_with_gold": with_gold,
    }


def _metric_note(dataset: str) -> str:
    if dataset in YES_NO_MAYBE_DATASETS:
        return "em = accuracy of the first yes/no/maybe in the answer; f1 = macro-F1 over yes/no/maybe"
    return "SQuAD exact match and token F1 (max over gold answers)"

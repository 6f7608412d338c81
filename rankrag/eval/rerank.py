"""Reranking evaluation: the first stage, the dense similarity, RankRAG (LLM only, fused, hybrid) and LlamaIndex's
LLMRerank.

Every system ranks the same first-stage candidates (the top N) of each query; metrics come from :mod:`rankrag.eval.metrics`
against the full qrels. ``rankrag`` and ``fused`` share one scoring pass per query: ``fused`` is
``model.rerank(..., first_stage_scores=BM25 scores, alpha=...)`` and ``rankrag`` orders the same
passages by the LLM score alone (``metadata["llm_score"]``, exactly what ``alpha=1`` gives), so both
report the time of that one call. ``dense`` orders the candidates by the model's embedding model's cosine alone
(the embedded MiniLM unless the model says otherwise). ``hybrid`` is what ``RankRAGReranker()`` does by default:
``model.rerank(..., first_stage_scores=BM25 scores)`` with the model's hybrid weights for a lexical first stage
(its cascade included), timed as its own call. ``llm_rerank`` lives in :mod:`rankrag_llamaindex.llm_rerank_baseline`
and is imported only when that system is asked for (it needs the ``[llamaindex]`` extra).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

from rankrag.data.datasets import RerankDataset, RerankQuery
from rankrag.eval.metrics import mean_ranking_metrics
from rankrag.optional import require

if TYPE_CHECKING:
    from rankrag.model.dense import Embedder
    from rankrag.model.rankrag_model import RankRAGModel
    from rankrag.model.results import ScoredPassage

RERANK_SYSTEMS = ("first_stage", "dense", "rankrag", "fused", "hybrid", "llm_rerank")
# llm_rerank needs the [llamaindex] extra, so it runs only on request.
DEFAULT_RERANK_SYSTEMS = ("first_stage", "dense", "rankrag", "fused", "hybrid")
LLM_RERANK_MODULE = "rankrag_llamaindex.llm_rerank_baseline"


def parse_systems(text: str | Sequence[str], known: Sequence[str]) -> list[str]:
    """``"a,b"`` -> ``["a", "b"]``, checked against ``known`` (order of ``known``, no duplicates)."""
    names = [part.strip() for part in (text.split(",") if isinstance(text, str) else text) if part.strip()]
    if not names:
        raise ValueError(f"no systems given; choose from {', '.join(known)}")
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"unknown system(s) {', '.join(map(repr, unknown))}; choose from {', '.join(known)}")
    return [name for name in known if name in names]


def llm_only_order(ranked: Sequence[ScoredPassage]) -> list[int]:
    """Input positions ordered by the LLM score alone, ties in input order (as ``rerank(alpha=1)``)."""
    return [p.index for p in sorted(ranked, key=lambda p: (-float(p.metadata["llm_score"]), p.index))]


class BaselineStats(Protocol):
    def as_dict(self) -> dict[str, object]: ...


class BaselineReranker(Protocol):
    """A reranker from outside the core (the ``llm_rerank`` baseline): candidate positions, best first."""

    @property
    def stats(self) -> BaselineStats: ...

    def rank(self, query: RerankQuery) -> list[int]: ...


def load_llm_rerank_baseline() -> ModuleType:
    """:mod:`rankrag_llamaindex.llm_rerank_baseline`, or :class:`MissingDependencyError` naming [llamaindex]."""
    purpose = "the llm_rerank system (LlamaIndex's LLMRerank)"
    require("llama_index.core", "llamaindex", purpose)
    return require(LLM_RERANK_MODULE, "llamaindex", purpose)


def llm_rerank_system(model: RankRAGModel) -> BaselineReranker:
    """LlamaIndex's ``LLMRerank`` driven by ``RankRAGLLM`` on ``model`` (needs the [llamaindex] extra)."""
    system: BaselineReranker = load_llm_rerank_baseline().LLMRerankSystem(model)
    return system


@dataclass
class RerankRun:
    """Rankings (candidate pids, best first) and total wall time per system."""

    rankings: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, system: str, qid: str, ranking: list[str], seconds: float) -> None:
        self.rankings.setdefault(system, {})[qid] = ranking
        self.seconds[system] = self.seconds.get(system, 0.0) + seconds


def _progress(items: Sequence[Any], description: str, enabled: bool) -> Iterable[Any]:
    from tqdm.auto import tqdm

    return tqdm(items, desc=description, unit="query", disable=not enabled, dynamic_ncols=True)


def run_rerank_systems(
    model: RankRAGModel | None,
    dataset: RerankDataset,
    systems: Sequence[str],
    *,
    candidates: int = 100,
    alpha: float = 1.0,
    progress: bool = True,
    llm_rerank: BaselineReranker | None = None,
) -> RerankRun:
    """Rank every query's first-stage top-``candidates`` with each system."""
    needs_model = any(s != "first_stage" for s in systems)
    if needs_model and model is None:
        raise ValueError("a model is needed for systems other than first_stage")
    if "llm_rerank" in systems and llm_rerank is None and model is not None:
        llm_rerank = llm_rerank_system(model)
    run = RerankRun()
    for query in _progress(dataset.queries, f"rerank {dataset.name}", progress):
        query = RerankQuery(query.qid, query.query, query.candidates[:candidates])
        pids = [c.pid for c in query.candidates]
        texts = [c.text for c in query.candidates]
        first_stage_scores = [c.first_stage_score for c in query.candidates]
        if "first_stage" in systems:
            run.add("first_stage", query.qid, pids, 0.0)
        if model is not None and "dense" in systems:
            start = time.perf_counter()
            similarities = _embedder_of(model).similarities(query.query, texts)
            order = sorted(range(len(pids)), key=lambda i: (-similarities[i], i))
            run.add("dense", query.qid, [pids[i] for i in order], time.perf_counter() - start)
        if model is not None and "hybrid" in systems:
            start = time.perf_counter()
            ranked = model.rerank(query.query, texts, first_stage_scores=first_stage_scores, first_stage="lexical")
            run.add("hybrid", query.qid, [pids[p.index] for p in ranked], time.perf_counter() - start)
        if model is not None and ("rankrag" in systems or "fused" in systems):
            fused_alpha = alpha if "fused" in systems else 1.0
            start = time.perf_counter()
            ranked = model.rerank(query.query, texts, first_stage_scores=first_stage_scores, alpha=fused_alpha)
            elapsed = time.perf_counter() - start
            if "fused" in systems:
                run.add("fused", query.qid, [pids[p.index] for p in ranked], elapsed)
            if "rankrag" in systems:
                run.add("rankrag", query.qid, [pids[i] for i in llm_only_order(ranked)], elapsed)
        if llm_rerank is not None and "llm_rerank" in systems:
            start = time.perf_counter()
            order = llm_rerank.rank(query)
            run.add("llm_rerank", query.qid, [pids[i] for i in order], time.perf_counter() - start)
    return run


def _embedder_of(model: RankRAGModel) -> Embedder:
    embedder = model.embedder
    if embedder is None:
        raise ValueError("the dense system needs an embedding model; this model has embedding_model=None")
    return embedder


def rerank_summary(run: RerankRun, dataset: RerankDataset, systems: Sequence[str]) -> dict[str, dict[str, float]]:
    """The ``systems`` block of the report: metrics and seconds per query for each system."""
    n_queries = max(len(dataset.queries), 1)
    summary = {}
    for system in systems:
        metrics = mean_ranking_metrics(run.rankings.get(system, {}), dataset.qrels, dataset.relevance_threshold)
        metrics["seconds_per_query"] = run.seconds.get(system, 0.0) / n_queries
        summary[system] = metrics
    return summary


def evaluate_rerank(
    model: RankRAGModel | None,
    dataset: RerankDataset,
    systems: Sequence[str],
    *,
    candidates: int = 100,
    alpha: float | None = None,
    split: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run and score the systems; returns the JSON report (``dataset, n_queries, candidates, model, systems``).

    ``alpha=None`` takes the model's calibrated fusion weight (0.25 when uncalibrated).
    """
    if candidates < 1:
        raise ValueError(f"candidates must be a positive integer, got {candidates}")
    if not dataset.queries:
        raise ValueError(f"no queries in {dataset.name!r} for split {split or 'all'!r}")
    fused_alpha, alpha_source = resolve_alpha(model, alpha) if model is not None else (None, None)
    llm_rerank = llm_rerank_system(model) if "llm_rerank" in systems and model is not None else None
    run = run_rerank_systems(
        model,
        dataset,
        systems,
        candidates=candidates,
        alpha=1.0 if fused_alpha is None else fused_alpha,
        progress=progress,
        llm_rerank=llm_rerank,
    )
    report: dict[str, Any] = {
        "dataset": dataset.name,
        "n_queries": len(dataset.queries),
        "candidates": candidates,
        "model": model.name if model is not None else "none",
        "systems": rerank_summary(run, dataset, systems),
        "split": split or "all",
    }
    if "fused" in systems:
        report["alpha"] = fused_alpha
        report["alpha_source"] = alpha_source
    if "hybrid" in systems and model is not None:
        report["hybrid_weights"] = model.hybrid_weights("lexical").as_dict()
        report["hybrid_weights_source"] = (
            "calibrated" if (model.calibration or {}).get("hybrid") else "uncalibrated default"
        )
    if "dense" in systems and model is not None:
        report["embedding_model"] = _embedder_of(model).name
    if llm_rerank is not None:
        report["llm_rerank_parsing"] = llm_rerank.stats.as_dict()
    return report


def resolve_alpha(model: RankRAGModel, alpha: float | None) -> tuple[float, str]:
    """The fusion weight to use and where it came from."""
    if alpha is not None:
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"--alpha must be between 0 (retriever only) and 1 (LLM only), got {alpha}")
        return float(alpha), "given"
    if model.calibration is None:
        return model.default_alpha, "uncalibrated default"
    return model.default_alpha, "calibrated"

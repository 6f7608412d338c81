"""Calibrating a model's reranking on the ``calib`` split (never on ``dev``): the hybrid weights per kind of first
stage, and the fusion weight ``alpha``.

The hybrid weights and cascade size are fitted by :func:`rankrag.eval.hybrid_fit.fit_hybrid` on the same scores
plus the embedding model's cosine of every candidate, once for a lexical first stage (the data sets' BM25 order
and scores) and once for a dense one (the candidates re-ordered by the cosine).

Every candidate of every calib query is scored once by the LLM; then, for each alpha on a grid from 0
(retriever only) to 1 (LLM only), the fused ranking (exactly the one ``RankRAGModel.rerank`` produces)
is scored by nDCG@10. The chosen alpha maximises the mean over the given data sets of each set's mean nDCG@10
over its calib queries (every data set weighs the same, however many calib queries it has); ties go to the
smaller alpha (closer to the retriever, the safer side). Each data set can be reranked at its own depth
(``candidates``: one count for all, or one per data set). Because
alpha = 0 reproduces the first stage, the choice is never below the first stage on the calib queries.
"""

from __future__ import annotations

import datetime as _datetime
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean
from typing import TYPE_CHECKING, Any

from rankrag.data.datasets import RerankDataset, load_rerank_dataset
from rankrag.data.splits import Split
from rankrag.eval.metrics import per_query_ranking_metrics
from rankrag.model import fusion

if TYPE_CHECKING:
    from rankrag.model.rankrag_model import RankRAGModel

CALIBRATION_SPLIT: Split = "calib"
DEFAULT_STEP = 0.05
TIE_TOLERANCE = 1e-9
RULE = (
    "argmax over alpha of calib nDCG@10 (mean over the data sets of each set's mean over its queries); "
    "ties go to the smaller alpha"
)
RELEVANCE_RULE = (
    "per kind of first stage, logistic regressions of calib relevance on logit P(True), dense cosine, the first "
    "stage's within-query normalised score and the cosine min-max normalised over the passages the cascade sends to "
    "the LLM (dense_in_query), coefficients >= 0 (full: on the cascade's passages; cheap: no LLM; no_dense: every "
    "LLM-scored passage), each data set weighing the same; the cascade size of the hybrid fit"
)
HYBRID_RULE = (
    "per kind of first stage: argmax of calib nDCG@10 (mean over the data sets of each set's mean over its "
    "queries) over a 0.1 simplex grid of (llm, dense, first_stage), ties to more first-stage weight; "
    "then the smallest cascade in 10/20/30/50 within 0.005 of scoring all"
)


@dataclass(frozen=True)
class ScoredQuery:
    """One calib query: its candidates' ids, LLM scores and normalised first-stage scores."""

    dataset: str
    qid: str
    pids: list[str]
    llm_scores: list[float]
    first_stage: list[float]
    dense: list[float] | None = None


def alpha_grid(step: float = DEFAULT_STEP) -> list[float]:
    """0, step, 2*step, ..., 1 (``step`` must divide 1)."""
    if not 0.0 < step <= 1.0:
        raise ValueError(f"the alpha step must be in (0, 1], got {step}")
    count = round(1.0 / step)
    if abs(count * step - 1.0) > 1e-9:
        raise ValueError(f"the alpha step must divide 1 (e.g. 0.05, 0.1), got {step}")
    return [round(i / count, 10) for i in range(count + 1)]


def fused_order(llm_scores: Sequence[float], first_stage: Sequence[float], alpha: float) -> list[int]:
    """Candidate positions as ``RankRAGModel.rerank`` orders them for this ``alpha``."""
    final = fusion.fuse(llm_scores, first_stage, alpha) if alpha < 1.0 else list(llm_scores)
    return sorted(range(len(final)), key=lambda i: (-final[i], i))


def score_queries(
    model: RankRAGModel,
    datasets: Sequence[RerankDataset],
    *,
    candidates: int | Mapping[str, int] = 100,
    progress: bool = True,
) -> list[ScoredQuery]:
    """LLM scores for every candidate (one pass per query), the normalised first-stage scores, and the embedding
    model's cosine (None when the model has ``embedding_model=None``). ``candidates``: how many of each query's
    first-stage list are reranked, for every data set or per data set name."""
    from tqdm.auto import tqdm

    depth = candidates_per_dataset(candidates, [data.name for data in datasets])
    work = [(data.name, query) for data in datasets for query in data.queries]
    embedder = model.embedder
    scored = []
    for name, query in tqdm(work, desc="calibrate: scoring", unit="query", disable=not progress, dynamic_ncols=True):
        reranked = query.candidates[: depth[name]]
        scored.append(
            ScoredQuery(
                dataset=name,
                qid=query.qid,
                pids=[c.pid for c in reranked],
                llm_scores=model.score(query.query, [c.text for c in reranked]),
                first_stage=fusion.normalized_first_stage(len(reranked), [c.first_stage_score for c in reranked]),
                dense=None if embedder is None else embedder.similarities(query.query, [c.text for c in reranked]),
            )
        )
    return scored


def candidates_per_dataset(candidates: int | Mapping[str, int], names: Sequence[str]) -> dict[str, int]:
    """``{data set: candidates}`` from one count for all or a count per data set (every one of ``names``)."""
    if isinstance(candidates, Mapping):
        missing = [name for name in names if name not in candidates]
        unknown = [name for name in candidates if name not in names]
        if missing or unknown:
            raise ValueError(
                f"give the candidates of every calibrated data set and no other; missing {missing}, unknown {unknown}"
            )
        depth = {name: candidates[name] for name in names}
    else:
        depth = {name: candidates for name in names}
    for name, count in depth.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"candidates must be a positive integer, got {count!r} for {name}")
    return depth


def ndcg_per_query(
    scored: Sequence[ScoredQuery], datasets: Sequence[RerankDataset], alpha: float
) -> dict[str, dict[str, float]]:
    """``{dataset: {qid: nDCG@10}}`` of the fused rankings at ``alpha``."""
    result = {}
    for data in datasets:
        rankings = {
            q.qid: [q.pids[i] for i in fused_order(q.llm_scores, q.first_stage, alpha)]
            for q in scored
            if q.dataset == data.name
        }
        result[data.name] = per_query_ranking_metrics(rankings, data.qrels, data.relevance_threshold)["ndcg@10"]
    return result


def choose_alpha(curve: dict[float, float]) -> float:
    """The alpha with the highest value; among (near-)ties, the smallest."""
    best = max(curve.values())
    return min(alpha for alpha, value in curve.items() if value >= best - TIE_TOLERANCE)


def calibration_curve(
    scored: Sequence[ScoredQuery], datasets: Sequence[RerankDataset], alphas: Sequence[float]
) -> tuple[dict[float, float], dict[str, dict[float, float]]]:
    """Per alpha, the mean over the data sets of their mean nDCG@10 (sets without a judged query left out), and
    the mean per data set."""
    overall: dict[float, float] = {}
    per_dataset: dict[str, dict[float, float]] = {data.name: {} for data in datasets}
    for alpha in alphas:
        values = ndcg_per_query(scored, datasets, alpha)
        means = [fmean(per_query.values()) for per_query in values.values() if per_query]
        if not means:
            raise ValueError("none of the calib queries has relevance judgements")
        overall[alpha] = fmean(means)
        for name, per_query in values.items():
            per_dataset[name][alpha] = fmean(per_query.values()) if per_query else 0.0
    return overall, per_dataset


def calibrate(
    model: RankRAGModel,
    data_dir: str | os.PathLike[str] | None,
    dataset_names: Sequence[str],
    *,
    limit: int | None = None,
    candidates: int | Mapping[str, int] = 100,
    step: float = DEFAULT_STEP,
    progress: bool = True,
) -> dict[str, Any]:
    """Score the calib queries once and pick alpha; returns the calibration record (not yet stored)."""
    if not dataset_names:
        raise ValueError("give at least one --dataset to calibrate on")
    names = list(dict.fromkeys(dataset_names))
    depth = candidates_per_dataset(candidates, names)
    alphas = alpha_grid(step)
    datasets = [load_rerank_dataset(data_dir, name, split=CALIBRATION_SPLIT, limit=limit) for name in names]
    empty = [data.name for data in datasets if not data.queries]
    if empty:
        raise ValueError(f"no {CALIBRATION_SPLIT!r} queries in {', '.join(empty)}")
    scored = score_queries(model, datasets, candidates=depth, progress=progress)
    overall, per_dataset = calibration_curve(scored, datasets, alphas)
    alpha = choose_alpha(overall)
    hybrid = hybrid_record(scored, datasets)
    adapter = model.spec.ranker_adapter if model.spec is not None else None
    return {
        "alpha": alpha,
        "ndcg@10 per alpha": {f"{a:.2f}": v for a, v in overall.items()},
        "ndcg@10 per alpha per dataset": {
            name: {f"{a:.2f}": v for a, v in curve.items()} for name, curve in per_dataset.items()
        },
        "first_stage ndcg@10": overall[0.0],
        "llm_only ndcg@10": overall[1.0],
        "chosen ndcg@10": overall[alpha],
        "datasets": names,
        "n_queries": {data.name: len(data.queries) for data in datasets},
        "split": CALIBRATION_SPLIT,
        "candidates": depth,
        "limit": limit,
        "rule": RULE,
        "model": model.name,
        "adapter": Path(adapter).name if adapter else None,
        "date": _datetime.datetime.now(_datetime.timezone.utc).isoformat(timespec="seconds"),
        **hybrid,
    }


def hybrid_record(scored: Sequence[ScoredQuery], datasets: Sequence[RerankDataset]) -> dict[str, Any]:
    """The ``relevance`` and ``hybrid`` entries of a calibration record: the relevance models and the min-max
    hybrid weights fitted per kind of first stage, and the calib nDCG@10 behind the weights; empty when the queries
    carry no dense signal."""
    from rankrag.eval.hybrid_fit import JudgedQueries, SignalQuery, fit_hybrid
    from rankrag.eval.relevance_fit import fit_relevance
    from rankrag.model.hybrid import FIRST_STAGE_KINDS

    if any(q.dense is None for q in scored):
        return {}
    groups = [
        JudgedQueries(
            [
                SignalQuery(q.qid, q.pids, q.llm_scores, q.dense or [], q.first_stage)
                for q in scored
                if q.dataset == d.name
            ],
            d.qrels,
            d.relevance_threshold,
        )
        for d in datasets
    ]
    fits = {kind: fit_hybrid(groups, kind) for kind in FIRST_STAGE_KINDS}
    try:
        relevance: dict[str, Any] = {
            "relevance": {
                kind: fit_relevance(groups, kind, fits[kind].weights.cascade).as_dict() for kind in FIRST_STAGE_KINDS
            },
            "relevance rule": RELEVANCE_RULE,
        }
    except ValueError as error:  # e.g. no relevant candidate among the calib queries: nothing to fit
        relevance = {"relevance note": f"not fitted: {error}; the uncalibrated defaults apply"}
    return {
        **relevance,
        "hybrid": {kind: fit.weights.as_dict() for kind, fit in fits.items()},
        "hybrid ndcg@10": {
            kind: {"all scored": fit.metric_all, "cascade": fit.metric_cascade, "first_stage": fit.metric_first_stage}
            for kind, fit in fits.items()
        },
        "hybrid rule": HYBRID_RULE,
    }


# What a calibration records about the roles (rankrag.model.loading.recorded_roles), kept across recalibrations.
ROLE_RECORD_KEYS = ("ranker_adapter", "answerer_adapter", "answerer_evidence")


def store_calibration(model: RankRAGModel, record: dict[str, Any], path: str | os.PathLike[str] | None = None) -> Path:
    """Save ``record`` where ``RankRAGModel.load`` finds it (or at ``path``) and make the model use it."""
    from rankrag.model.calibration_store import save_calibration

    previous = model.calibration or {}
    kept = {key: previous[key] for key in ROLE_RECORD_KEYS if key in previous and key not in record}
    record = {**record, **kept}  # a recalibration keeps the roles' choice of weights
    written = save_calibration(model.spec, model.name, record, Path(path) if path is not None else None)
    model.reload_calibration()
    return written

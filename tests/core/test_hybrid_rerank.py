"""RankRAGModel.rerank's default: the hybrid of the LLM, the dense similarity and the first stage, with the cascade.

Mechanics on the tiny random model; the dense signal is the embedded MiniLM or a recording embedder.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from rankrag import RankRAGModel
from rankrag.errors import ModelNotFoundError
from rankrag.model import hybrid
from rankrag.model.calibration_store import CALIBRATION_FILE
from rankrag.model.hybrid import HybridWeights
from rankrag.model.rankrag_model import UNCALIBRATED_HYBRID, UNCALIBRATED_RELEVANCE
from rankrag.model.relevance import LogisticModel, RelevanceModels
from rankrag.model.selection import select

QUERY = "What is the capital of Japan?"
PASSAGES = [
    "Kyoto was the imperial capital of Japan until 1868.",
    "Tokyo is the capital of Japan.",
    "Paris is the capital of France.",
    "Sushi is a Japanese dish.",
    "Mount Fuji is the highest mountain in Japan.",
]


class RecordingEmbedder:
    """Fixed similarities; records every call, so a test can see whether the dense signal was computed."""

    name = "recording"

    def __init__(self, values: Sequence[float]) -> None:
        self.values = list(values)
        self.calls: list[list[str]] = []

    def similarities(self, query: str, passages: Sequence[str]) -> list[float]:
        self.calls.append(list(passages))
        return self.values[: len(passages)]


def test_default_is_the_calibrated_relevance_of_three_signals(tiny_model: RankRAGModel) -> None:
    ranked = tiny_model.rerank(QUERY, PASSAGES)
    models = tiny_model.relevance_models("lexical")
    assert models == UNCALIBRATED_RELEVANCE["lexical"]  # the tiny model has no calibration
    llm = tiny_model.score(QUERY, PASSAGES)
    dense = tiny_model.embedder.similarities(QUERY, PASSAGES)  # type: ignore[union-attr]
    first = [1.0 - i / len(PASSAGES) for i in range(len(PASSAGES))]  # 5 passages: all within the cascade
    in_query = hybrid.min_max(dense)  # the cosine among the passages the LLM scored: all five here
    expected = {
        i: models.full.probability(llm=llm[i], dense=dense[i], first_stage=first[i], dense_in_query=in_query[i])
        for i in range(5)
    }
    assert {p.index: p.score for p in ranked} == pytest.approx(expected)
    assert [p.score for p in ranked] == sorted((p.score for p in ranked), reverse=True)
    for passage in ranked:
        assert passage.metadata["llm_score"] == pytest.approx(llm[passage.index])
        assert passage.metadata["dense_score"] == pytest.approx(dense[passage.index])


def test_weights_give_the_min_max_hybrid_of_three_signals(tiny_model: RankRAGModel) -> None:
    weights = UNCALIBRATED_HYBRID["lexical"]
    assert tiny_model.hybrid_weights("lexical") == weights  # the tiny model has no calibration
    ranked = tiny_model.rerank(QUERY, PASSAGES, weights=weights)
    llm = tiny_model.score(QUERY, PASSAGES)
    dense = tiny_model.embedder.similarities(QUERY, PASSAGES)  # type: ignore[union-attr]
    first = [1.0 - i / len(PASSAGES) for i in range(len(PASSAGES))]
    expected = hybrid.hybrid_ranking(weights, dict(enumerate(llm)), dense, first, first)
    assert [p.index for p in ranked] == [index for index, _ in expected]
    assert [p.score for p in ranked] == pytest.approx([score for _, score in expected])
    for passage in ranked:
        assert passage.metadata["llm_score"] == pytest.approx(llm[passage.index])
        assert passage.metadata["dense_score"] == pytest.approx(dense[passage.index])
        assert 0.0 <= passage.score <= 1.0


def test_alpha_is_the_two_signal_fusion_without_embedding(tiny_model: RankRAGModel) -> None:
    embedder = RecordingEmbedder([0.1] * 5)
    model = tiny_model.with_options(embedding_model=embedder)
    ranked = model.rerank(QUERY, PASSAGES, first_stage_scores=[5.0, 4.0, 3.0, 2.0, 1.0], alpha=0.6)
    llm = model.score(QUERY, PASSAGES)
    first = [1.0, 0.75, 0.5, 0.25, 0.0]
    scores = {p.index: p.score for p in ranked}
    assert scores == pytest.approx({i: 0.6 * llm[i] + 0.4 * first[i] for i in range(5)})
    assert all(p.metadata["dense_score"] is None for p in ranked)
    assert embedder.calls == []


def test_a_dense_first_stage_with_scores_is_the_dense_signal(tiny_model: RankRAGModel) -> None:
    embedder = RecordingEmbedder([0.0] * 5)
    model = tiny_model.with_options(embedding_model=embedder)
    similarities = [0.2, 0.9, 0.1, 0.4, 0.3]
    ranked = model.rerank(QUERY, PASSAGES, first_stage_scores=similarities, first_stage="dense")
    assert embedder.calls == []
    assert {p.index: p.metadata["dense_score"] for p in ranked} == pytest.approx(dict(enumerate(similarities)))
    # Without scores a dense first stage has only its order: the dense signal is computed.
    model.rerank(QUERY, PASSAGES, first_stage="dense")
    assert embedder.calls == [PASSAGES]


def test_the_cascade_sends_only_the_best_by_the_cheap_signals_to_the_llm(tiny_model: RankRAGModel) -> None:
    similarities = [0.2, 0.9, 0.1, 0.4, 0.3]
    weights = HybridWeights(llm=0.5, dense=0.5, first_stage=0.0, cascade=2)
    ranked = tiny_model.rerank(QUERY, PASSAGES, dense_scores=similarities, weights=weights)
    scored = [p for p in ranked if p.metadata["llm_score"] is not None]
    assert sorted(p.index for p in scored) == [1, 3]  # the two most similar
    assert ranked[:2] == sorted(scored, key=lambda p: -p.score)
    rest = ranked[2:]
    assert [p.index for p in rest] == [4, 0, 2]  # cheap order
    assert all(p.score < 0.0 <= q.score for p in rest for q in scored)


def test_no_dense_signal_gives_the_probability_from_the_llm_and_the_first_stage(tiny_model: RankRAGModel) -> None:
    model = tiny_model.with_options(embedding_model=None)
    assert model.embedder is None
    ranked = model.rerank(QUERY, PASSAGES)
    llm = model.score(QUERY, PASSAGES)
    no_dense = model.relevance_models("lexical").no_dense
    first = [1.0 - i / len(PASSAGES) for i in range(len(PASSAGES))]
    expected = {i: no_dense.probability(llm=llm[i], first_stage=first[i]) for i in range(5)}
    assert {p.index: p.score for p in ranked} == pytest.approx(expected)
    assert all(p.metadata["dense_score"] is None for p in ranked)


def test_blank_passages_are_neither_embedded_nor_ranked(tiny_model: RankRAGModel) -> None:
    embedder = RecordingEmbedder([0.5, 0.4, 0.3])
    model = tiny_model.with_options(embedding_model=embedder)
    ranked = model.rerank(QUERY, [PASSAGES[0], "  ", PASSAGES[1], "", PASSAGES[2]])
    assert embedder.calls == [[PASSAGES[0], PASSAGES[1], PASSAGES[2]]]
    assert sorted(p.index for p in ranked) == [0, 2, 4]
    assert {p.index: p.metadata["dense_score"] for p in ranked} == pytest.approx({0: 0.5, 2: 0.4, 4: 0.3})


async def test_async_rerank_equals_sync(tiny_model: RankRAGModel) -> None:
    weights = HybridWeights(llm=0.4, dense=0.4, first_stage=0.2, cascade=3)
    assert await tiny_model.arerank(QUERY, PASSAGES, weights=weights) == tiny_model.rerank(
        QUERY, PASSAGES, weights=weights
    )


def test_rank_scored_equals_rerank(tiny_model: RankRAGModel) -> None:
    llm = tiny_model.score(QUERY, PASSAGES)
    scores = [3.0, 1.0, 2.0, 0.5, 0.1]
    assert tiny_model.rank_scored(PASSAGES, llm, query=QUERY, first_stage_scores=scores) == tiny_model.rerank(
        QUERY, PASSAGES, first_stage_scores=scores
    )


def test_mixed_retrieval_scores_fall_back_to_the_input_order(tiny_model: RankRAGModel) -> None:
    """A documented rule: the retriever's scores count only when every non-blank passage has one."""
    mixed = select(tiny_model, QUERY, PASSAGES, first_stage_scores=[0.1, None, 0.3, 0.2, 0.9])
    assert mixed.ranking == tiny_model.rerank(QUERY, PASSAGES)
    complete = select(tiny_model, QUERY, PASSAGES, first_stage_scores=[0.1, 0.5, 0.3, 0.2, 0.9])
    assert complete.ranking == tiny_model.rerank(QUERY, PASSAGES, first_stage_scores=[0.1, 0.5, 0.3, 0.2, 0.9])
    assert complete.ranking != mixed.ranking


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"alpha": 0.5, "weights": HybridWeights(0.5, 0.5, 0.0)}, "not both"),
        ({"first_stage": "sparse"}, "unknown first_stage 'sparse'"),
        ({"dense_scores": [0.1, 0.2]}, "2 dense scores for 5 passages"),
        ({"dense_scores": [0.1, 0.2, float("nan"), 0.3, 0.4]}, "dense scores must be finite"),
        ({"first_stage_scores": [0.1, 0.2], "first_stage": "dense"}, "2 first-stage scores for 5 passages"),
    ],
)
def test_bad_ranking_input_is_named(tiny_model: RankRAGModel, keywords: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tiny_model.rerank(QUERY, PASSAGES, **keywords)  # type: ignore[arg-type]


def test_an_embedding_model_that_cannot_be_loaded_is_named(tiny_model: RankRAGModel, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-embedder"
    model = tiny_model.with_options(embedding_model=str(missing))
    with pytest.raises(ModelNotFoundError, match="no-such-embedder"):
        model.rerank(QUERY, PASSAGES)
    assert model.rerank(QUERY, PASSAGES, alpha=0.5)  # the fused rule needs no embedding model


def test_calibrated_relevance_models_are_the_default(tiny_model_dir: Path, tmp_path: Path) -> None:
    directory = tmp_path / "calibrated-relevance"
    shutil.copytree(tiny_model_dir, directory)
    models = RelevanceModels(
        full=LogisticModel(-1.0, {"llm": 1.0, "dense": 1.0, "first_stage": 1.0}),
        cheap=LogisticModel(-2.0, {"dense": 2.0, "first_stage": 1.0}),
        no_dense=LogisticModel(-1.0, {"llm": 1.0, "first_stage": 1.0}),
        cascade=2,
    )
    record = {"alpha": 0.5, "relevance": {"lexical": models.as_dict(), "dense": models.as_dict()}}
    (directory / CALIBRATION_FILE).write_text(json.dumps(record))
    model = RankRAGModel.load(str(directory), adapter=None)
    assert model.relevance_models("lexical") == models
    ranked = model.rerank(QUERY, PASSAGES, dense_scores=[0.2, 0.9, 0.1, 0.4, 0.3])
    # cheap: -2 + 2 * cosine + first stage (1, 0.8, ..., 0.2 by position): passages 1 and 0 are its best two
    assert sorted(p.index for p in ranked if p.metadata["llm_score"] is not None) == [0, 1]


def test_calibrated_hybrid_weights_apply_when_asked_for(tiny_model_dir: Path, tmp_path: Path) -> None:
    directory = tmp_path / "calibrated"
    shutil.copytree(tiny_model_dir, directory)
    fitted = {
        "lexical": {"llm": 0.3, "dense": 0.6, "first_stage": 0.1, "cascade": 2},
        "dense": {"llm": 0.5, "dense": 0.5, "first_stage": 0.0, "cascade": None},
    }
    (directory / CALIBRATION_FILE).write_text(json.dumps({"alpha": 0.5, "hybrid": fitted}))
    model = RankRAGModel.load(str(directory), adapter=None)
    assert model.hybrid_weights("lexical") == HybridWeights(0.3, 0.6, 0.1, cascade=2)
    assert model.hybrid_weights("dense") == HybridWeights(0.5, 0.5, 0.0)
    ranked = model.rerank(QUERY, PASSAGES, dense_scores=[0.2, 0.9, 0.1, 0.4, 0.3], weights=model.hybrid_weights())
    assert sum(p.metadata["llm_score"] is not None for p in ranked) == 2

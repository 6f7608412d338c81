"""The training pool in the blend: the SQuAD pool's article split, volume, and one-line errors on bad data."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from rankrag.data.datasets import load_qa_dataset
from rankrag.data.splits import split_of
from rankrag.train.blend import BlendConfig, build_blend, context_ranking_pool
from rankrag.train.pool import (
    CLIMATE_FEVER,
    NQ_OPEN,
    SQUAD_POOL,
    WIKIQA,
    PoolFormatError,
    pool_qa_queries,
    pool_ranking_queries,
    squad_pool,
)
from rankrag.train.sources import QAQuery, qa_queries, ranking_queries


@pytest.fixture(scope="module")
def pool_qa(data_dir: Path) -> list[QAQuery]:
    return pool_qa_queries(data_dir)


def test_squad_pool_takes_only_train_articles_of_the_squad_dev_split(data_dir: Path, pool_qa: list[QAQuery]) -> None:
    held_out_titles = {
        item.group for split in ("dev", "calib") for item in load_qa_dataset(data_dir, "squad_v1.1_dev", split=split)
    }
    assert held_out_titles, "the dev split of squad_v1.1_dev should hold articles"
    squad = [q for q in pool_qa if q.source == SQUAD_POOL]
    assert len(squad) > 1000
    titles = {q.group for q in squad}
    assert not titles & held_out_titles
    assert all(split_of("squad_v1.1_dev", title) == "train" for title in titles)
    # Every pool row of a dev-split article exists in the file and is skipped: the split is by article.
    with (data_dir / "train_pool" / SQUAD_POOL / "questions.jsonl").open(encoding="utf-8") as handle:
        file_titles = {json.loads(line)["title"] for line in handle}
    assert file_titles & held_out_titles, "the pool shares articles with the dev set; the split must remove them"
    held_out_questions = {
        item.question.strip().lower()
        for split in ("dev", "calib")
        for item in load_qa_dataset(data_dir, "squad_v1.1_dev", split=split)
    }
    assert not {q.question.strip().lower() for q in squad} & held_out_questions


def test_the_blend_material_holds_at_least_30k_ranking_pairs(data_dir: Path, pool_qa: list[QAQuery]) -> None:
    qa = qa_queries(data_dir) + pool_qa
    ranking = ranking_queries(data_dir, qa) + pool_ranking_queries(data_dir)
    pairs: Counter[str] = Counter()
    for query in ranking:
        pairs[query.source] += len(query.positives) + len(query.negatives)
    assert sum(pairs.values()) >= 30_000
    assert {SQUAD_POOL, NQ_OPEN, WIKIQA, CLIMATE_FEVER} <= set(pairs)
    example = context_ranking_pool(next(q for q in ranking if q.source == WIKIQA), 3)
    assert {e.target for e in example} == {"True", "False"}


def test_default_blend_draws_from_the_pool(data_dir: Path) -> None:
    blend = build_blend(data_dir, BlendConfig(size=3000, seed=3))
    sources = Counter(e.source for e in blend)
    assert {SQUAD_POOL, NQ_OPEN, WIKIQA, CLIMATE_FEVER} <= set(sources)
    qa_sources = {e.source for e in blend if e.task in ("context_qa", "retrieval_qa")}
    assert WIKIQA not in qa_sources and CLIMATE_FEVER not in qa_sources  # sentences and claims: no short answers


def _write(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("{not json", "not a JSON object"),
        ('{"id": "x", "question": "q"}', "lacks the field"),
        ('{"id": "x", "question": "q", "candidates": [{"text": "t"}]}', "malformed row"),
    ],
)
def test_a_bad_pool_row_is_named_by_file_and_line(tmp_path: Path, bad_line: str, message: str) -> None:
    good = json.dumps(
        {"id": "w1", "question": "what is x", "candidates": [{"text": "x is y", "label": 1}, {"text": "z", "label": 0}]}
    )
    path = tmp_path / "train_pool" / WIKIQA / "questions.jsonl"
    _write(path, [good, bad_line])
    with pytest.raises(PoolFormatError, match=rf"questions\.jsonl:2: .*{message}"):
        pool_ranking_queries(tmp_path)


def test_bad_squad_pool_row_is_named(tmp_path: Path) -> None:
    _write(tmp_path / "train_pool" / SQUAD_POOL / "questions.jsonl", ['{"id": 1}'])
    with pytest.raises(PoolFormatError, match=r"questions\.jsonl:1: the row lacks"):
        list(squad_pool(tmp_path))


def test_a_data_directory_without_ranking_material_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no training material for ranking"):
        build_blend(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_blend(tmp_path / "missing")

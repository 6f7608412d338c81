"""Raw material for the training blend, read from the ``train`` split of the shared data sets only.

Two kinds of material come out: :class:`RankingQuery` (a question with relevant and non-relevant passages,
non-relevant ones hardest first) and :class:`QAQuery` (a question with answers, gold and distractor passages).
``calib`` and ``dev`` queries (see :mod:`rankrag.data.splits`) are never read into either.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rankrag.data.datasets import QA_DATASETS, load_qa_dataset, read_jsonl, read_qrels, read_scifact_corpus
from rankrag.data.splits import split_of

SCIFACT_TRAIN_SOURCE = "scifact_train"
RANKING_SOURCES = ("trec_dl_passage", "msmarco_train", SCIFACT_TRAIN_SOURCE, *QA_DATASETS)
QA_SOURCES = QA_DATASETS
TREC_RELEVANT_GRADE = 2


@dataclass(frozen=True)
class TrainingQuery:
    """A question of the ``source`` data set. ``group`` is the split key (query id, article title)."""

    source: str
    group: str
    question: str


@dataclass(frozen=True)
class RankingQuery(TrainingQuery):
    """A training query for context ranking."""

    positives: tuple[str, ...]
    negatives: tuple[str, ...]


@dataclass(frozen=True)
class QAQuery(TrainingQuery):
    """A training question for answer generation, with gold passages and distractors."""

    answers: tuple[str, ...]
    gold: tuple[str, ...]
    distractors: tuple[str, ...]


def _trec_dl(data_dir: Path) -> Iterator[RankingQuery]:
    """Judged BM25 candidates of train queries: grade >= 2 relevant, grade 0 not (grade 1 left out)."""
    for row in read_jsonl(data_dir / "trec_dl_passage" / "bm25_top100.jsonl"):
        qid = str(row["qid"])
        if split_of("trec_dl_passage", qid) != "train":
            continue
        judged = [c for c in row["candidates"] if c.get("judged", True)]
        positives = tuple(c["text"] for c in judged if int(c["label"]) >= TREC_RELEVANT_GRADE)
        negatives = tuple(c["text"] for c in judged if int(c["label"]) == 0)
        if positives and negatives:
            yield RankingQuery("trec_dl_passage", qid, row["query"], positives, negatives)


def _msmarco(data_dir: Path) -> Iterator[RankingQuery]:
    path = data_dir / "msmarco_train" / "train.jsonl"
    if not path.is_file():
        return
    for row in read_jsonl(path):
        group = str(row.get("qid") or row["local_id"])
        if split_of("msmarco_train", group) != "train":
            continue
        positives = tuple(p["text"] for p in row["positives"])
        negatives = tuple(n["text"] for n in row["negatives"] if n["text"] not in positives)
        if positives and negatives:
            yield RankingQuery("msmarco_train", group, row["query"], positives, negatives)


_TOKEN = re.compile(r"[a-z0-9]+")


def bm25_tokens(text: str) -> list[str]:
    """Lower-cased alphanumeric tokens without English stop words (the data set's own BM25 settings)."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return [t for t in _TOKEN.findall(text.lower()) if t not in ENGLISH_STOP_WORDS]


def bm25_index(texts: Sequence[str]) -> Any:
    """A ``rank_bm25.BM25Okapi`` over ``texts`` with the data set's own BM25 settings (k1 0.9, b 0.4)."""
    from rank_bm25 import BM25Okapi

    return BM25Okapi([bm25_tokens(text) for text in texts], k1=0.9, b=0.4)


def _scifact_train(data_dir: Path, negatives_per_query: int) -> Iterator[RankingQuery]:
    """BEIR SciFact *train* claims; hard negatives are the top BM25 abstracts that are not relevant."""
    directory = data_dir / "scifact"
    if not (directory / "queries_train.jsonl").is_file():
        return
    import numpy as np

    corpus = read_scifact_corpus(directory)
    pids = sorted(corpus)
    index = bm25_index([corpus[pid] for pid in pids])
    qrels = read_qrels(directory / "qrels_train.tsv")
    for row in read_jsonl(directory / "queries_train.jsonl"):
        qid = str(row["_id"])
        relevant = {pid for pid, grade in qrels.get(qid, {}).items() if grade > 0 and pid in corpus}
        if not relevant:
            continue
        scores = index.get_scores(bm25_tokens(row["text"]))
        ranked = [pids[i] for i in np.argsort(-scores, kind="stable")[: negatives_per_query + len(relevant)]]
        negatives = tuple(corpus[pid] for pid in ranked if pid not in relevant)[:negatives_per_query]
        yield RankingQuery(
            SCIFACT_TRAIN_SOURCE, qid, row["text"], tuple(corpus[p] for p in sorted(relevant)), negatives
        )


def _qa_queries(data_dir: Path, name: str) -> Iterator[QAQuery]:
    for item in load_qa_dataset(data_dir, name, split="train"):
        gold = tuple(c.text for c in item.contexts if c.is_gold)
        # A distractor that contains an answer string may well answer the question: not a safe negative.
        distractors = tuple(c.text for c in item.contexts if not c.is_gold and not c.has_answer)
        if gold:
            yield QAQuery(name, item.group, item.question, tuple(item.answers), gold, distractors)


def qa_queries(data_dir: Path) -> list[QAQuery]:
    """Every train-split question of the QA sets present in ``data_dir``."""
    return [q for name in QA_SOURCES if (data_dir / name).is_dir() for q in _qa_queries(data_dir, name)]


def ranking_queries(data_dir: Path, qa: list[QAQuery], scifact_negatives: int = 8) -> list[RankingQuery]:
    """Train-split ranking queries of the reranking sets plus the QA sets (gold vs. distractors)."""
    queries: list[RankingQuery] = []
    if (data_dir / "trec_dl_passage").is_dir():
        queries.extend(_trec_dl(data_dir))
    queries.extend(_msmarco(data_dir))
    queries.extend(_scifact_train(data_dir, scifact_negatives))
    queries.extend(RankingQuery(q.source, q.group, q.question, q.gold, q.distractors) for q in qa if q.distractors)
    return queries


def source_groups(data_dir: Path) -> dict[str, set[str]]:
    """For leakage checks: the SciFact train claim ids (their own split, disjoint from test claims)."""
    path = data_dir / "scifact" / "queries_train.jsonl"
    if not path.is_file():
        return {SCIFACT_TRAIN_SOURCE: set()}
    with path.open(encoding="utf-8") as handle:
        return {SCIFACT_TRAIN_SOURCE: {str(json.loads(line)["_id"]) for line in handle if line.strip()}}

"""Readers for evaluation data in the layout of the shared data directory (see its README).

The directory comes from an argument or the ``RANKRAG_DATA_DIR`` environment variable, because user
copies live in different places.
"""

from __future__ import annotations

import csv
import json
import os
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rankrag.data.splits import Split, check_split, split_of

RERANK_DATASETS = ("trec_dl_passage", "scifact")
QA_DATASETS = (
    "squad_v1.1_dev",
    "hotpotqa_dev_distractor",
    "musique_ans_dev",
    "2wikimultihopqa_dev",
    "pubmedqa_pqal",
)
RELEVANCE_THRESHOLD = {"trec_dl_passage": 2, "scifact": 1}


@dataclass(frozen=True)
class Candidate:
    pid: str
    text: str
    first_stage_score: float
    label: int


@dataclass(frozen=True)
class RerankQuery:
    qid: str
    query: str
    candidates: list[Candidate]


@dataclass(frozen=True)
class RerankDataset:
    """Queries with first-stage candidates (in first-stage order) and the full qrels."""

    name: str
    queries: list[RerankQuery]
    qrels: dict[str, dict[str, int]]
    relevance_threshold: int


@dataclass(frozen=True)
class QAContext:
    title: str
    text: str
    is_gold: bool
    has_answer: bool


@dataclass(frozen=True)
class QAItem:
    id: str
    question: str
    answers: list[str]
    contexts: list[QAContext]
    group: str
    extra: dict[str, Any] = field(default_factory=dict)


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: the argument, else $RANKRAG_DATA_DIR."""
    value = data_dir if data_dir is not None else os.environ.get("RANKRAG_DATA_DIR")
    if not value:
        raise FileNotFoundError("no data directory: pass --data-dir DIR or set RANKRAG_DATA_DIR")
    path = Path(value).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"data directory {str(path)!r} does not exist")
    return path


def _dataset_dir(data_dir: str | os.PathLike[str] | None, name: str, known: tuple[str, ...]) -> Path:
    if name not in known:
        raise ValueError(f"unknown dataset {name!r}; choose one of {known}")
    path = resolve_data_dir(data_dir) / name
    if not path.is_dir():
        raise FileNotFoundError(f"dataset {name!r} not found under {str(path.parent)!r}")
    return path


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    with path.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            qrels[row["query-id"]][row["corpus-id"]] = int(row["score"])
    return dict(qrels)


def read_scifact_corpus(directory: Path) -> dict[str, str]:
    """pid -> "title. text" (title and abstract, as BEIR rerankers see them)."""
    return {
        row["_id"]: f"{row['title']}. {row['text']}".strip() if row.get("title") else row["text"]
        for row in read_jsonl(directory / "corpus.jsonl")
    }


def load_rerank_dataset(
    data_dir: str | os.PathLike[str] | None, name: str, *, split: Split | None = None, limit: int | None = None
) -> RerankDataset:
    """A reranking set: ``trec_dl_passage`` or ``scifact`` (its test claims), optionally one split."""
    check_split(split)
    directory = _dataset_dir(data_dir, name, RERANK_DATASETS)
    corpus = read_scifact_corpus(directory) if name == "scifact" else {}
    queries = []
    for row in read_jsonl(directory / "bm25_top100.jsonl"):
        qid = str(row["qid"])
        if split is not None and split_of(name, qid) != split:
            continue
        candidates = [
            Candidate(
                pid=str(c["pid"]),
                text=c["text"] if "text" in c else corpus[str(c["pid"])],
                first_stage_score=float(c.get("bm25_score", 0.0)),
                label=int(c.get("label", 0)),
            )
            for c in row["candidates"]
        ]
        queries.append(RerankQuery(qid=qid, query=row["query"], candidates=candidates))
    queries.sort(key=lambda q: q.qid)
    if limit is not None:
        queries = queries[:limit]
    wanted = {q.qid for q in queries}
    qrels = {qid: rels for qid, rels in read_qrels(directory / "qrels.tsv").items() if qid in wanted}
    return RerankDataset(name=name, queries=queries, qrels=qrels, relevance_threshold=RELEVANCE_THRESHOLD[name])


def _qa_group(name: str, row: dict[str, Any]) -> str:
    return str(row["title"]) if name == "squad_v1.1_dev" else str(row["id"])


def load_qa_dataset(
    data_dir: str | os.PathLike[str] | None, name: str, *, split: Split | None = None, limit: int | None = None
) -> list[QAItem]:
    """A QA set (question, answers, contexts with ``is_gold``); SQuAD splits by article."""
    check_split(split)
    directory = _dataset_dir(data_dir, name, QA_DATASETS)
    items = []
    for row in read_jsonl(directory / "questions.jsonl"):
        group = _qa_group(name, row)
        if split is not None and split_of(name, group) != split:
            continue
        contexts = [
            QAContext(
                title=str(c.get("title", "")),
                text=str(c["text"]),
                is_gold=bool(c.get("is_gold", False)),
                has_answer=bool(c.get("has_answer", False)),
            )
            for c in row["contexts"]
        ]
        known = {"id", "question", "answers", "contexts"}
        items.append(
            QAItem(
                id=str(row["id"]),
                question=row["question"],
                answers=[str(a) for a in row["answers"]],
                contexts=contexts,
                group=group,
                extra={k: v for k, v in row.items() if k not in known},
            )
        )
    items.sort(key=lambda item: item.id)
    return items[:limit] if limit is not None else items

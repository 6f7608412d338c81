"""The training-only sets of ``<data dir>/train_pool/`` (see its README) as blend material.

* ``squad_v1.1_pool``: more SQuAD dev questions of the *shared* articles. It shares its articles with
  ``squad_v1.1_dev``, so it is split by article title exactly as that set is
  (:data:`rankrag.data.splits.SPLIT_OF_SET`): only questions of ``train``-split articles are read,
  never one of a dev or calib article.
* ``nq_open_oracle``: NQ-open questions with their gold passage and BM25-mined negatives (QA and ranking).
* ``wikiqa``: web-search questions with labelled answer sentences (ranking; the answers are sentences,
  not short answers, so no QA example is made).
* ``climate_fever``: claims with evidence sentences labelled SUPPORTS / REFUTES (relevant) or
  NOT_ENOUGH_INFO (not relevant) (ranking).

A row that lacks a field or is not JSON is a :class:`PoolFormatError` naming the file and line.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from rankrag.data.splits import split_of
from rankrag.train.sources import QAQuery, RankingQuery

Query = TypeVar("Query")

POOL_DIR = "train_pool"
SQUAD_POOL = "squad_v1.1_pool"
NQ_OPEN = "nq_open_oracle"
WIKIQA = "wikiqa"
CLIMATE_FEVER = "climate_fever"
POOL_SOURCES = (SQUAD_POOL, NQ_OPEN, WIKIQA, CLIMATE_FEVER)
POOL_FILES = {
    SQUAD_POOL: "questions.jsonl",
    NQ_OPEN: "questions.jsonl",
    WIKIQA: "questions.jsonl",
    CLIMATE_FEVER: "claims.jsonl",
}


class PoolFormatError(ValueError):
    """A training-pool row that cannot be read; the message names the file and line."""


def pool_file(data_dir: Path, source: str) -> Path:
    return data_dir / POOL_DIR / source / POOL_FILES[source]


def _rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise PoolFormatError(f"{path}:{number}: not a JSON object ({error.msg})") from None
            if not isinstance(row, dict):
                raise PoolFormatError(f"{path}:{number}: not a JSON object")
            missing = [name for name in required if name not in row]
            if missing:
                raise PoolFormatError(f"{path}:{number}: the row lacks the field(s) {missing}")
            yield number, row


def _field(path: Path, number: int, read: Callable[[], Any]) -> Any:
    try:
        return read()
    except (KeyError, TypeError, AttributeError) as error:
        raise PoolFormatError(f"{path}:{number}: malformed row ({type(error).__name__}: {error})") from None


def squad_pool(data_dir: Path) -> Iterator[QAQuery]:
    """Questions of train-split articles only; distractors that contain an answer string are left out."""
    path = pool_file(data_dir, SQUAD_POOL)
    for number, row in _rows(path, ("id", "question", "answers", "title", "contexts")):
        title = str(row["title"])
        if split_of(SQUAD_POOL, title) != "train":
            continue
        contexts = row["contexts"]
        gold = _field(path, number, lambda: tuple(str(c["text"]) for c in contexts if c["is_gold"]))
        distractors = _field(
            path, number, lambda: tuple(str(c["text"]) for c in contexts if not c["is_gold"] and not c["has_answer"])
        )
        answers = tuple(str(a) for a in row["answers"])
        if gold and answers:
            yield QAQuery(SQUAD_POOL, title, str(row["question"]), answers, gold, distractors)


def nq_open(data_dir: Path) -> Iterator[QAQuery]:
    path = pool_file(data_dir, NQ_OPEN)
    for number, row in _rows(path, ("id", "question", "answers", "gold", "negatives")):
        gold = _field(path, number, lambda: (str(row["gold"]["text"]),))
        negatives = _field(path, number, lambda: tuple(str(n["text"]) for n in row["negatives"]))
        answers = tuple(str(a) for a in row["answers"])
        if answers:
            yield QAQuery(NQ_OPEN, str(row["id"]), str(row["question"]), answers, gold, negatives)


def wikiqa(data_dir: Path) -> Iterator[RankingQuery]:
    """Questions with at least one labelled answer sentence; the other candidates are the negatives."""
    path = pool_file(data_dir, WIKIQA)
    for number, row in _rows(path, ("id", "question", "candidates")):
        candidates = row["candidates"]
        positives = _field(path, number, lambda: tuple(str(c["text"]) for c in candidates if int(c["label"]) == 1))
        negatives = _field(path, number, lambda: tuple(str(c["text"]) for c in candidates if int(c["label"]) == 0))
        if positives and negatives:
            yield RankingQuery(WIKIQA, str(row["id"]), str(row["question"]), positives, negatives)


def climate_fever(data_dir: Path) -> Iterator[RankingQuery]:
    """Evidence that supports or refutes the claim is relevant; NOT_ENOUGH_INFO evidence is not."""
    path = pool_file(data_dir, CLIMATE_FEVER)
    for number, row in _rows(path, ("id", "claim", "evidences")):
        evidences = row["evidences"]
        positives = _field(path, number, lambda: tuple(str(e["text"]) for e in evidences if e["relevant"]))
        negatives = _field(path, number, lambda: tuple(str(e["text"]) for e in evidences if not e["relevant"]))
        if positives and negatives:
            yield RankingQuery(CLIMATE_FEVER, str(row["id"]), str(row["claim"]), positives, negatives)


def pool_qa_queries(data_dir: Path) -> list[QAQuery]:
    """The pool's QA material (SQuAD pool, NQ-open) present under ``data_dir``."""
    return _read_present(data_dir, [(SQUAD_POOL, squad_pool), (NQ_OPEN, nq_open)])


def pool_ranking_queries(data_dir: Path) -> list[RankingQuery]:
    """The pool's ranking-only material (WikiQA, Climate-FEVER) present under ``data_dir``."""
    return _read_present(data_dir, [(WIKIQA, wikiqa), (CLIMATE_FEVER, climate_fever)])


def _read_present(data_dir: Path, readers: Sequence[tuple[str, Callable[[Path], Iterable[Query]]]]) -> list[Query]:
    """Everything the readers of the sets whose file is under ``data_dir`` yield, in the readers' order."""
    return [query for name, read in readers if pool_file(data_dir, name).is_file() for query in read(data_dir)]

"""Deterministic train / calib / dev splits of the shared data sets, by query (by article for SQuAD).

One definition serves training (``train``), fusion calibration (``calib``) and the reported figures
(``dev``), so no query ever crosses roles. Membership depends only on the data set name and the key.
SciFact's BEIR *train* claims (``queries_train.jsonl``) are all ``train``; its test claims split into
``dev`` and ``calib`` only.
"""

from __future__ import annotations

import hashlib
from typing import Literal

Split = Literal["train", "calib", "dev"]
SPLITS: tuple[Split, ...] = ("train", "calib", "dev")

# Fractions of the keys in each split, in order dev, calib, train (the rest).
FRACTIONS: dict[str, tuple[float, float]] = {
    "trec_dl_passage": (0.40, 0.20),
    "scifact": (0.60, 0.40),
    "squad_v1.1_dev": (0.40, 0.0),
    "hotpotqa_dev_distractor": (0.40, 0.0),
    "musique_ans_dev": (0.40, 0.0),
    "2wikimultihopqa_dev": (0.40, 0.0),
    "pubmedqa_pqal": (0.40, 0.0),
    "msmarco_train": (0.0, 0.0),
    # The training pool (``train_pool/``): training-only sets ...
    "nq_open_oracle": (0.0, 0.0),
    "wikiqa": (0.0, 0.0),
    "climate_fever": (0.0, 0.0),
}
# ... except the SQuAD pool, which shares its articles with ``squad_v1.1_dev`` and so takes that set's
# article split: no question of a dev or calib article is ever trained on.
SPLIT_OF_SET = {"squad_v1.1_pool": "squad_v1.1_dev"}
DEFAULT_FRACTIONS = (0.40, 0.10)


def _unit_interval(dataset: str, key: str) -> float:
    digest = hashlib.sha256(f"rankrag-split:{dataset}:{key}".encode()).hexdigest()
    return int(digest[:12], 16) / float(1 << 48)


def split_of(dataset: str, key: str) -> Split:
    """The split a query id (or SQuAD article title) belongs to."""
    dataset = SPLIT_OF_SET.get(dataset, dataset)
    dev, calib = FRACTIONS.get(dataset, DEFAULT_FRACTIONS)
    point = _unit_interval(dataset, key)
    if point < dev:
        return "dev"
    if point < dev + calib:
        return "calib"
    return "train"


def check_split(split: str | None) -> None:
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS} or None for all")

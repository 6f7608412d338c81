"""The RankRAG stage-2 instruction-tuning blend, built from the ``train`` split of a shared-data directory.

Four task types, as in RankRAG (Yu et al., 2024, section 4.2):

* ``context_ranking``: question + one passage -> ``True`` / ``False`` (the scorer's prompt, balanced classes,
  hard negatives from BM25 candidates and same-topic distractors);
* ``context_qa``: question + its gold passage(s) -> a short answer;
* ``retrieval_qa``: question + 5 passages (gold plus hard negatives, shuffled) -> a short answer;
* ``multi_ranking``: question + 5 passages -> the ids of the relevant ones (``"2, 5"``; ``"None"``).

An example stores texts, not token ids: the trainer renders it with the prompts used at inference, so one
blend serves any base model. Output is deduplicated and depends only on the data and the seed.

Reference (paper) blend for stage 2: the stage-1 SFT data (~128k general instruction examples), context-rich
QA (DROP, NarrativeQA, Quoref, ROPES, NewsQA, TAT-QA, synthetic conversational QA), retrieval-augmented QA
(SQuAD and WebQuestions with BM25 hard negatives), context ranking (MS MARCO passage pairs, synthetic
conversations) and retrieval-augmented ranking (SQuAD, WebQuestions); about 50k ranking pairs in all. Our
data directory has none of the general instruction sets and far fewer labelled queries, so the default
mix here is ranking-heavy (see :data:`DEFAULT_TASK_RATIOS`) and keeps a smaller QA share so that answer
generation is not hurt.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import cast

from rankrag.data.datasets import resolve_data_dir
from rankrag.files import write_text_atomic
from rankrag.train.pool import pool_qa_queries, pool_ranking_queries
from rankrag.train.shapes import RANKRAG_SHAPE, SHAPES, USER_SHAPES
from rankrag.train.sources import QAQuery, RankingQuery, qa_queries, ranking_queries

TASKS = ("context_ranking", "context_qa", "retrieval_qa", "multi_ranking", "no_answer_qa")
QA_TASKS = ("context_qa", "retrieval_qa", "no_answer_qa")
# General instructions answered by the base model itself (rankrag.train.replay): added to a blend, not drawn.
REPLAY_TASK = "replay"
# Ranking dominates, as in the paper's ranking-heavy stage 2 for a reranker; QA keeps a sixth so the model
# learns the short-answer format (the untuned model writes whole sentences: SQuAD EM 0 from the gold passage).
# context_qa (one gold passage) is three times cheaper per example than retrieval_qa (five passages).
DEFAULT_TASK_RATIOS: dict[str, float] = {
    "context_ranking": 0.80,
    "context_qa": 0.10,
    "retrieval_qa": 0.06,
    "multi_ranking": 0.04,
    "no_answer_qa": 0.0,
}
# The answer to a question whose passages lack the answer: ChatQA's (and so RankRAG's) wording for it.
NO_ANSWER_TEXT = "Sorry. I cannot find the answer based on the context."
# Share of the QA examples rendered in a user's prompt shape (rankrag.train.shapes) instead of RankRAG's own.
DEFAULT_USER_SHAPE_SHARE = 0.0
# Sampling weight x availability sets each source's share. In-domain web-search pairs (TREC DL train
# queries, MS MARCO train) are scarce and closest to the reranking we ship for, so they are drawn first;
# WikiQA (Bing queries) and SciFact train claims are up-weighted so the huge SQuAD pool does not crowd out
# web search and science; PubMedQA sections are weak ranking labels.
DEFAULT_SOURCE_WEIGHTS: dict[str, float] = {
    "trec_dl_passage": 4.0,
    "msmarco_train": 4.0,
    "scifact_train": 1.5,
    "squad_v1.1_dev": 1.0,
    "squad_v1.1_pool": 1.0,
    "nq_open_oracle": 1.0,
    "wikiqa": 1.5,
    "climate_fever": 1.0,
    "hotpotqa_dev_distractor": 1.5,
    "musique_ans_dev": 1.0,
    "2wikimultihopqa_dev": 1.0,
    "pubmedqa_pqal": 0.3,
}
DEFAULT_BLEND_SIZE = 24000
MULTI_PASSAGES = 5
NO_RELEVANT_ANSWER = "None"


@dataclass(frozen=True)
class BlendExample:
    """One instruction example. ``target`` is the assistant's whole answer.

    ``shape`` is the prompt a QA example is rendered in (:data:`rankrag.train.shapes.SHAPES`): RankRAG's own
    answer prompt, or one of the shapes users send. A ``replay`` example is a plain user message (``question``)
    answered by the base model itself (``target``), so tuning keeps what the base could do.
    """

    task: str
    source: str
    group: str
    question: str
    passages: tuple[str, ...]
    target: str
    id: str = ""
    shape: str = RANKRAG_SHAPE
    teacher: float | None = None

    def key(self) -> str:
        fields: list[object] = [self.task, " ".join(self.question.lower().split()), self.passages, self.target]
        if self.shape != RANKRAG_SHAPE:  # keeps the ids of RankRAG-shaped examples as they were
            fields.append(self.shape)
        return hashlib.sha1(json.dumps(fields).encode("utf-8")).hexdigest()[:16]

    def to_json(self) -> str:
        record = asdict(self)
        record["passages"] = list(self.passages)
        if self.shape == RANKRAG_SHAPE:
            del record["shape"]  # blends written before shapes existed read back the same
        if self.teacher is None:
            del record["teacher"]
        return json.dumps(record, ensure_ascii=False)

    @classmethod
    def from_dict(cls, record: Mapping[str, object]) -> BlendExample:
        missing = {"task", "question", "passages", "target"} - set(record)
        if missing:
            raise ValueError(f"blend record lacks the field(s) {sorted(missing)}")
        if record["task"] not in (*TASKS, REPLAY_TASK):
            raise ValueError(f"unknown task {record['task']!r} in blend record; expected one of {TASKS} or 'replay'")
        return cls(
            task=str(record["task"]),
            source=str(record.get("source", "")),
            group=str(record.get("group", "")),
            question=str(record["question"]),
            passages=tuple(str(p) for p in cast("Iterable[object]", record["passages"])),
            target=str(record["target"]),
            id=str(record.get("id", "")),
            shape=_checked_shape(record.get("shape", RANKRAG_SHAPE)),
            teacher=_checked_teacher(record.get("teacher")),
        )


def _checked_teacher(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ValueError(f"teacher score must be a number, got {value!r}")
    return float(value)


def _checked_shape(shape: object) -> str:
    if shape not in SHAPES:
        raise ValueError(f"unknown prompt shape {shape!r} in blend record; expected one of {SHAPES}")
    return str(shape)


@dataclass(frozen=True)
class BlendConfig:
    """What to build. ``size`` is the number of examples before dedup (None: everything available)."""

    size: int | None = DEFAULT_BLEND_SIZE
    seed: int = 20240702
    task_ratios: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_TASK_RATIOS))
    source_weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_SOURCE_WEIGHTS))
    negatives_per_positive: int = 3
    scifact_negatives: int = 8
    user_shape_share: float = DEFAULT_USER_SHAPE_SHARE
    distill_queries: int = 0
    distill_group_size: int = 8

    def __post_init__(self) -> None:
        unknown = set(self.task_ratios) - set(TASKS)
        if unknown:
            raise ValueError(f"unknown task(s) {sorted(unknown)} in task_ratios; choose from {TASKS}")
        if any(v < 0 for v in self.task_ratios.values()) or sum(self.task_ratios.values()) <= 0:
            raise ValueError("task_ratios must be non-negative and not all zero")
        if any(v < 0 for v in self.source_weights.values()):
            raise ValueError("source_weights must be non-negative")
        if self.size is not None and self.size < 1:
            raise ValueError(f"size must be at least 1, got {self.size}")
        if not 0.0 <= self.user_shape_share <= 1.0:
            raise ValueError(f"user_shape_share must be in [0, 1], got {self.user_shape_share}")
        if self.negatives_per_positive < 1:
            raise ValueError(f"negatives_per_positive must be at least 1, got {self.negatives_per_positive}")


def _rng(seed: int, *labels: str) -> random.Random:
    return random.Random(f"{seed}:" + ":".join(labels))


def context_ranking_pool(query: RankingQuery, negatives_per_positive: int) -> list[BlendExample]:
    """Every positive, and as many of the hardest negatives (``negatives_per_positive`` per positive)."""
    examples = [
        BlendExample("context_ranking", query.source, query.group, query.question, (p,), "True")
        for p in query.positives
    ]
    wanted = len(query.positives) * negatives_per_positive
    examples += [
        BlendExample("context_ranking", query.source, query.group, query.question, (n,), "False")
        for n in query.negatives[:wanted]
    ]
    return examples


def _five_passages(gold: Sequence[str], negatives: Sequence[str], rng: random.Random) -> list[tuple[str, bool]]:
    chosen = [(g, True) for g in gold[: MULTI_PASSAGES - 1]]
    chosen += [(n, False) for n in negatives[: MULTI_PASSAGES - len(chosen)]]
    rng.shuffle(chosen)
    return chosen


def retrieval_qa_example(query: QAQuery, seed: int) -> BlendExample | None:
    if len(query.gold) + len(query.distractors) < 2:
        return None
    chosen = _five_passages(query.gold, query.distractors, _rng(seed, "rqa", query.source, query.question))
    return BlendExample(
        "retrieval_qa", query.source, query.group, query.question, tuple(p for p, _ in chosen), query.answers[0]
    )


def no_answer_example(query: QAQuery, seed: int) -> BlendExample | None:
    """The question over its distractors only (gold passages removed), answered with :data:`NO_ANSWER_TEXT`."""
    if len(query.distractors) < 2:
        return None
    passages = list(query.distractors[:MULTI_PASSAGES])
    _rng(seed, "naqa", query.source, query.question).shuffle(passages)
    return BlendExample("no_answer_qa", query.source, query.group, query.question, tuple(passages), NO_ANSWER_TEXT)


def context_qa_example(query: QAQuery) -> BlendExample:
    return BlendExample("context_qa", query.source, query.group, query.question, query.gold, query.answers[0])


def multi_ranking_example(query: RankingQuery, seed: int) -> BlendExample | None:
    if not query.negatives:
        return None
    rng = _rng(seed, "mr", query.source, query.question)
    gold = list(query.positives)
    rng.shuffle(gold)
    chosen = _five_passages(gold[: rng.randint(1, 2)], query.negatives, rng)
    ids = [str(i) for i, (_, relevant) in enumerate(chosen, start=1) if relevant]
    target = ", ".join(ids) if ids else NO_RELEVANT_ANSWER
    return BlendExample("multi_ranking", query.source, query.group, query.question, tuple(p for p, _ in chosen), target)


def distill_group(query: RankingQuery, group_size: int, seed: int) -> list[BlendExample]:
    """One query's candidate list for distillation: up to two positives and the hardest negatives, up to
    ``group_size`` context-ranking examples (teacher scores are added by :func:`with_teacher_scores`)."""
    rng = _rng(seed, "distill", query.source, query.question)
    positives = list(query.positives)
    rng.shuffle(positives)
    chosen = [(p, "True") for p in positives[:2]]
    chosen += [(n, "False") for n in query.negatives[: group_size - len(chosen)]]
    return [
        BlendExample("context_ranking", query.source, query.group, query.question, (p,), label) for p, label in chosen
    ]


def with_teacher_scores(
    examples: Sequence[BlendExample], scorer: Callable[[str, Sequence[str]], list[float]]
) -> list[BlendExample]:
    """``examples`` with ``teacher`` set on the context-ranking ones, scored one question at a time."""
    by_question: dict[str, list[int]] = {}
    for index, example in enumerate(examples):
        if example.task == "context_ranking":
            by_question.setdefault(example.question, []).append(index)
    scored = list(examples)
    for question, indices in by_question.items():
        for index, score in zip(indices, scorer(question, [examples[i].passages[0] for i in indices])):
            scored[index] = replace(examples[index], teacher=round(score, 5))
    return scored


def allocate(total: int, available: Mapping[str, int], weights: Mapping[str, float]) -> dict[str, int]:
    """Split ``total`` over sources in proportion to weight x availability, capped by availability."""
    counts = {name: 0 for name in available}
    open_sources = {name for name, n in available.items() if n > 0 and weights.get(name, 1.0) > 0}
    remaining = total
    while remaining > 0 and open_sources:
        mass = {name: weights.get(name, 1.0) * available[name] for name in open_sources}
        scale = remaining / sum(mass.values())
        capped = {name for name in open_sources if counts[name] + mass[name] * scale >= available[name]}
        if capped:
            for name in capped:
                remaining -= available[name] - counts[name]
                counts[name] = available[name]
            open_sources -= capped
            continue
        shares = {name: mass[name] * scale for name in open_sources}
        floors = {name: int(share) for name, share in shares.items()}
        leftover = remaining - sum(floors.values())
        for name in sorted(open_sources, key=lambda n: (floors[n] - shares[n], n))[:leftover]:
            floors[name] += 1
        for name, count in floors.items():
            counts[name] += count
        remaining = 0
    return counts


def _sample(
    pools: Mapping[str, list[BlendExample]], total: int | None, config: BlendConfig, label: str
) -> list[BlendExample]:
    if total is None:
        return [example for name in sorted(pools) for example in pools[name]]
    counts = allocate(total, {name: len(pool) for name, pool in pools.items()}, config.source_weights)
    chosen = []
    for name in sorted(pools):
        pool = list(pools[name])
        _rng(config.seed, label, name).shuffle(pool)
        chosen.extend(pool[: counts[name]])
    return chosen


def _balanced_ranking(
    pools: Mapping[str, list[BlendExample]], total: int | None, config: BlendConfig
) -> list[BlendExample]:
    """Half True, half False: the two classes are sampled separately, with the same source weights."""
    halves = [None, None] if total is None else [total - total // 2, total // 2]
    chosen = []
    for answer, half in zip(("True", "False"), halves):
        by_class = {name: [e for e in pool if e.target == answer] for name, pool in pools.items()}
        chosen += _sample(by_class, half, config, f"cr-{answer}")
    return chosen


def in_user_shape(example: BlendExample, config: BlendConfig) -> BlendExample:
    """``example`` in one of the user prompt shapes for a ``user_shape_share`` of QA examples (chosen by a
    seeded draw on the example's content), else unchanged."""
    rng = _rng(config.seed, "shape", example.key())
    if rng.random() >= config.user_shape_share:
        return example
    return replace(example, shape=USER_SHAPES[rng.randrange(len(USER_SHAPES))], id="")


def dedupe(examples: Iterable[BlendExample]) -> list[BlendExample]:
    """First occurrence of every distinct (task, question, passages, target); ids set to the content key."""
    seen: set[str] = set()
    unique = []
    for example in examples:
        key = example.key()
        if key not in seen:
            seen.add(key)
            unique.append(BlendExample(**{**asdict(example), "id": key}))
    return unique


def build_blend(data_dir: str | os.PathLike[str] | None, config: BlendConfig | None = None) -> list[BlendExample]:
    """The blend of ``data_dir``'s train split: deduplicated, shuffled with ``config.seed``."""
    config = config or BlendConfig()
    directory = resolve_data_dir(data_dir)
    qa = qa_queries(directory) + pool_qa_queries(directory)
    ranking = ranking_queries(directory, qa, scifact_negatives=config.scifact_negatives)
    ranking += pool_ranking_queries(directory)
    if not ranking:
        raise ValueError(
            f"data directory {str(directory)!r} holds no training material for ranking (expected the shared "
            "data sets and/or train_pool/); a RankRAG blend needs ranking examples"
        )
    ratio_sum = sum(config.task_ratios.values())
    targets = {
        task: None if config.size is None else round(config.size * config.task_ratios.get(task, 0.0) / ratio_sum)
        for task in TASKS
    }
    pools: dict[str, dict[str, list[BlendExample]]] = {task: {} for task in TASKS}
    for query in ranking:
        pools["context_ranking"].setdefault(query.source, []).extend(
            dedupe(context_ranking_pool(query, config.negatives_per_positive))
        )
        multi = multi_ranking_example(query, config.seed)
        if multi is not None:
            pools["multi_ranking"].setdefault(query.source, []).append(multi)
    for qa_query in qa:
        pools["context_qa"].setdefault(qa_query.source, []).append(context_qa_example(qa_query))
        rqa = retrieval_qa_example(qa_query, config.seed)
        if rqa is not None:
            pools["retrieval_qa"].setdefault(qa_query.source, []).append(rqa)
        unanswerable = no_answer_example(qa_query, config.seed)
        if unanswerable is not None:
            pools["no_answer_qa"].setdefault(qa_query.source, []).append(unanswerable)
    chosen: list[BlendExample] = []
    for task in TASKS:
        if targets[task] == 0:
            continue
        if task == "context_ranking":
            chosen += _balanced_ranking(pools[task], targets[task], config)
        else:
            chosen += _sample(pools[task], targets[task], config, task)
    chosen = [in_user_shape(e, config) if e.task in QA_TASKS else e for e in chosen]
    if config.distill_queries:
        listed = [q for q in ranking if q.positives and len(q.negatives) >= 2]
        _rng(config.seed, "distill-queries").shuffle(listed)
        for query in listed[: config.distill_queries]:
            chosen += distill_group(query, config.distill_group_size, config.seed)
    unique = dedupe(chosen)
    _rng(config.seed, "order").shuffle(unique)
    return unique


def write_blend(examples: Sequence[BlendExample], path: str | os.PathLike[str]) -> Path:
    return write_text_atomic(path, (example.to_json() + "\n" for example in examples))


def read_blend(path: str | os.PathLike[str]) -> list[BlendExample]:
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"blend file {str(source)!r} does not exist; build one with `rankrag blend`")
    examples = []
    with source.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                examples.append(BlendExample.from_dict(json.loads(line)))
            except (json.JSONDecodeError, ValueError) as error:
                raise ValueError(f"{source}:{number}: not a blend record: {error}") from error
    return examples


def summarize(examples: Sequence[BlendExample]) -> dict[str, dict[str, int]]:
    """Counts by task, by source and (for context ranking) by answer."""
    return {
        "task": dict(Counter(e.task for e in examples)),
        "source": dict(Counter(e.source for e in examples)),
        "context_ranking_answer": dict(Counter(e.target for e in examples if e.task == "context_ranking")),
        "shape": dict(Counter(e.shape for e in examples if e.task in (*QA_TASKS, REPLAY_TASK))),
    }

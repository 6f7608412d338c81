"""The blend: train split only, deduplicated, balanced, reproducible, configurable."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from rankrag.data.datasets import QA_DATASETS, RERANK_DATASETS, load_qa_dataset, load_rerank_dataset
from rankrag.data.splits import split_of
from rankrag.train.blend import (
    TASKS,
    BlendConfig,
    BlendExample,
    allocate,
    build_blend,
    dedupe,
    read_blend,
    summarize,
    write_blend,
)
from rankrag.train.sources import SCIFACT_TRAIN_SOURCE, source_groups

SIZE = 1200


@pytest.fixture(scope="module")
def blend(mini_data_dir: Path) -> list[BlendExample]:
    return build_blend(mini_data_dir, BlendConfig(size=SIZE, seed=7))


def test_every_example_comes_from_the_train_split(blend: list[BlendExample], data_dir: Path) -> None:
    scifact_train_ids = source_groups(data_dir)[SCIFACT_TRAIN_SOURCE]
    scifact_test_ids = {q.qid for q in load_rerank_dataset(data_dir, "scifact").queries}
    for example in blend:
        if example.source == SCIFACT_TRAIN_SOURCE:
            assert example.group in scifact_train_ids and example.group not in scifact_test_ids
        else:
            assert split_of(example.source, example.group) == "train", (example.source, example.group)


def test_no_calib_or_dev_question_text_reaches_the_blend(blend: list[BlendExample], data_dir: Path) -> None:
    held_out = set()
    for name in RERANK_DATASETS:
        for split in ("calib", "dev"):
            held_out |= {q.query.strip().lower() for q in load_rerank_dataset(data_dir, name, split=split).queries}
    for name in QA_DATASETS:
        for split in ("calib", "dev"):
            held_out |= {item.question.strip().lower() for item in load_qa_dataset(data_dir, name, split=split)}
    leaked = [e.question for e in blend if e.question.strip().lower() in held_out]
    assert not leaked


def test_blend_has_every_task_and_balanced_ranking_answers(blend: list[BlendExample]) -> None:
    counts = summarize(blend)
    assert set(counts["task"]) == set(TASKS) - {"no_answer_qa"}  # unanswerable QA is drawn only when asked for
    assert counts["task"]["context_ranking"] > 0.7 * len(blend)
    answers = counts["context_ranking_answer"]
    assert set(answers) == {"True", "False"}
    assert abs(answers["True"] - answers["False"]) <= 0.02 * sum(answers.values())
    assert {"trec_dl_passage", "msmarco_train", SCIFACT_TRAIN_SOURCE} <= set(counts["source"])


def test_blend_is_deduplicated_and_ids_are_content_keys(blend: list[BlendExample]) -> None:
    assert len({e.id for e in blend}) == len(blend)
    assert all(e.id == e.key() for e in blend)
    assert len(blend) <= SIZE


def test_same_seed_same_bytes_other_seed_other_order(
    mini_data_dir: Path, blend: list[BlendExample], tmp_path: Path
) -> None:
    again = build_blend(mini_data_dir, BlendConfig(size=SIZE, seed=7))
    first, second = write_blend(blend, tmp_path / "a.jsonl"), write_blend(again, tmp_path / "b.jsonl")
    assert first.read_bytes() == second.read_bytes()
    other = build_blend(mini_data_dir, BlendConfig(size=SIZE, seed=8))
    assert [e.id for e in other] != [e.id for e in blend]
    assert read_blend(first) == blend


def test_ranking_examples_hold_one_passage_and_multi_ranking_names_ids(blend: list[BlendExample]) -> None:
    for example in blend:
        if example.task == "context_ranking":
            assert len(example.passages) == 1 and example.target in ("True", "False")
        elif example.task == "multi_ranking":
            assert 2 <= len(example.passages) <= 5
            ids = [int(i) for i in example.target.split(", ")]
            assert ids == sorted(ids) and all(1 <= i <= len(example.passages) for i in ids)
        else:
            assert example.passages and example.target


def test_trec_dl_labels_follow_the_grades(blend: list[BlendExample], data_dir: Path) -> None:
    grades = {}
    for line in (data_dir / "trec_dl_passage" / "bm25_top100.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        for candidate in row["candidates"]:
            grades[(str(row["qid"]), candidate["text"])] = candidate["label"]
    trec = [e for e in blend if e.source == "trec_dl_passage" and e.task == "context_ranking"]
    assert trec
    for example in trec:
        grade = grades[(example.group, example.passages[0])]
        assert (grade >= 2) if example.target == "True" else (grade == 0)


def test_task_ratios_are_configurable(mini_data_dir: Path) -> None:
    only_ranking = build_blend(
        mini_data_dir, BlendConfig(size=300, task_ratios={"context_ranking": 1.0, "context_qa": 0.0})
    )
    assert Counter(e.task for e in only_ranking) == {"context_ranking": len(only_ranking)}


def test_dedupe_drops_repeats_case_insensitively_in_the_question() -> None:
    a = BlendExample("context_ranking", "s", "g", "What is X?", ("p",), "True")
    b = BlendExample("context_ranking", "s", "g2", "what is  x?", ("p",), "True")
    c = BlendExample("context_ranking", "s", "g", "What is X?", ("p",), "False")
    assert [e.target for e in dedupe([a, b, c])] == ["True", "False"]


def test_allocate_caps_small_sources_and_spends_the_rest() -> None:
    assert allocate(100, {"small": 10, "big": 1000}, {"small": 4.0, "big": 1.0}) == {"small": 4, "big": 96}
    assert allocate(100, {"small": 10, "big": 1000}, {"small": 100.0, "big": 1.0}) == {"small": 10, "big": 90}
    assert allocate(5000, {"a": 10, "b": 20}, {}) == {"a": 10, "b": 20}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task_ratios": {"poems": 1.0}}, "unknown task"),
        ({"size": 0}, "size"),
        (
            {"task_ratios": {"context_ranking": 0.0, "context_qa": 0.0, "retrieval_qa": 0.0, "multi_ranking": 0.0}},
            "not all zero",
        ),
        ({"negatives_per_positive": 0}, "negatives_per_positive"),
    ],
)
def test_bad_config_is_a_clear_error(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BlendConfig(**kwargs)  # type: ignore[arg-type]


def test_read_blend_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"task": "context_ranking", "question": "q", "passages": ["p"], "target": "True"}\n{"task": 1}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2"):
        read_blend(path)
    with pytest.raises(FileNotFoundError, match="rankrag blend"):
        read_blend(tmp_path / "missing.jsonl")


def test_an_answer_blend_holds_unanswerable_questions_over_passages_without_the_answer(mini_data_dir: Path) -> None:
    from rankrag.train.blend import NO_ANSWER_TEXT
    from rankrag.train.sources import qa_queries
    from rankrag.train.trainer import _normalize_answer

    ratios = {"context_ranking": 0.0, "multi_ranking": 0.0, "context_qa": 0.4, "retrieval_qa": 0.3, "no_answer_qa": 0.3}
    examples = build_blend(mini_data_dir, BlendConfig(size=200, seed=7, task_ratios=ratios, user_shape_share=0.5))
    unanswerable = [e for e in examples if e.task == "no_answer_qa"]
    assert unanswerable and {e.target for e in unanswerable} == {NO_ANSWER_TEXT}
    answers = {q.question: q.answers for q in qa_queries(mini_data_dir)}
    for example in unanswerable:
        text = _normalize_answer(" ".join(example.passages))
        assert not any(_normalize_answer(a) in text for a in answers.get(example.question, ()) if _normalize_answer(a))
    assert {e.task for e in examples} == {"context_qa", "retrieval_qa", "no_answer_qa"}

"""Distillation from the embedded MiniLM: teacher scores in the blend, and the KL term of the lean loop."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from rankrag.train.blend import BlendConfig, BlendExample, build_blend, read_blend, with_teacher_scores, write_blend
from rankrag.train.lean_loop import TEACHER_TEMPERATURE, collate, distillation_loss


def test_distillation_loss_is_the_kl_from_the_teacher_softmax_to_the_student_softmax() -> None:
    margins = torch.tensor([2.0, 0.5, -1.0, 3.0, 1.0])
    queries = torch.tensor([0, 0, 0, 1, -1])
    teachers = torch.tensor([0.30, 0.35, 0.10, 0.5, 0.9])
    target = torch.softmax(teachers[:3] / TEACHER_TEMPERATURE, 0)
    by_hand = sum(float(t) * (math.log(float(t)) - float(s)) for t, s in zip(target, torch.log_softmax(margins[:3], 0)))
    # query 1 has one scored row and the last row has no query: neither adds anything
    assert float(distillation_loss(margins, queries, teachers)) == pytest.approx(by_hand, rel=1e-5)


def test_distillation_loss_ignores_rows_without_a_teacher_and_is_zero_when_student_matches() -> None:
    teachers = torch.tensor([0.2, 0.25, math.nan])
    matched = teachers[:2] / TEACHER_TEMPERATURE
    margins = torch.cat([matched + 7.0, torch.tensor([100.0])])  # a shift changes no softmax
    assert float(distillation_loss(margins, torch.tensor([4, 4, 4]), teachers)) == pytest.approx(0.0, abs=1e-5)


def test_collate_carries_the_teacher_score_of_the_answer_token_only() -> None:
    rows = [
        {"input_ids": [1, 2, 3, 4], "completion_mask": [0, 0, 1, 1], "answer_pair": [3, 9], "query": 0, "teacher": 0.4},
        {"input_ids": [1, 2, 5], "completion_mask": [0, 0, 1]},
    ]
    teachers = collate(rows, pad_id=0)["teachers"]
    assert teachers[0] == pytest.approx(0.4) and math.isnan(teachers[1]) and math.isnan(teachers[2])


def test_distill_groups_are_scored_by_the_teacher_and_round_trip(mini_data_dir: Path, tmp_path: Path) -> None:
    config = BlendConfig(size=60, seed=5, distill_queries=3, distill_group_size=6)
    examples = build_blend(mini_data_dir, config)
    plain = build_blend(mini_data_dir, BlendConfig(size=60, seed=5))
    assert len(examples) > len(plain)
    scored = with_teacher_scores(examples, lambda question, passages: [0.1 * i for i in range(len(passages))])
    ranking = [e for e in scored if e.task == "context_ranking"]
    assert ranking and all(e.teacher is not None for e in ranking)
    assert all(e.teacher is None for e in scored if e.task != "context_ranking")
    path = write_blend(scored, tmp_path / "blend.jsonl")
    assert read_blend(path) == scored
    with pytest.raises(ValueError, match="teacher score must be a number"):
        BlendExample.from_dict(
            {"task": "context_ranking", "question": "q", "passages": ["p"], "target": "True", "teacher": "x"}
        )

"""Fixtures for the performance-path correctness tests: real SQuAD text, short passages to stay cheap."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).parent.parent / "fixtures"


def read_jsonl(name: str) -> list[dict[str, str]]:
    with (FIXTURES / name).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.fixture(scope="session")
def squad_passages() -> list[str]:
    """Real paragraphs cut to mixed lengths (a few words to over the 40-token cap) so batches need padding."""
    rows = read_jsonl("squad_passages.jsonl")
    return [row["text"][:cut] for row, cut in zip(rows[::7], [400, 35, 120, 1000, 60, 220, 15, 500] * 4)]


@pytest.fixture(scope="session")
def squad_questions() -> list[str]:
    return [row["question"] for row in read_jsonl("squad_questions.jsonl")]


@pytest.fixture(scope="session")
def fp32_model(embedded_model):  # type: ignore[no-untyped-def]
    """The embedded model with passages cut to 40 tokens: real weights in float32, cheap prompts."""
    assert embedded_model.model.dtype == torch.float32, "these equality checks are meant for float32"
    options = replace(embedded_model.scoring_options, max_passage_tokens=40)
    return embedded_model.with_options(scoring_options=options)


@pytest.fixture(scope="session")
def short_prompt_model(fp32_model):  # type: ignore[no-untyped-def]
    """As ``fp32_model`` with a one-line system text: the same passage-first prompt shape, fewer tokens."""
    from rankrag import PromptTemplates

    return fp32_model.with_options(templates=PromptTemplates(system="Judge whether the passage answers the question."))

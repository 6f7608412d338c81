"""Training prompts are token-for-token the prompts the model sees at inference."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rankrag.model.prompts import render_multi_ranking_prompt
from rankrag.model.ranking_prompts import answer_token_ids
from rankrag.train.blend import BlendExample
from rankrag.train.trainer import ExampleEncoder, encode_blend

FIXTURES = Path(__file__).parent.parent / "fixtures"


@pytest.fixture(scope="module")
def squad() -> tuple[dict[str, object], list[str]]:
    question = json.loads((FIXTURES / "squad_questions.jsonl").read_text(encoding="utf-8").splitlines()[0])
    passages = [
        json.loads(line)["text"]
        for line in (FIXTURES / "squad_passages.jsonl").read_text(encoding="utf-8").splitlines()[:5]
    ]
    return question, passages


@pytest.fixture(scope="module")
def encoder(base_model) -> ExampleEncoder:  # type: ignore[no-untyped-def]
    return ExampleEncoder(
        base_model.tokenizer,
        max_passage_tokens=base_model.scoring_options.max_passage_tokens,
        max_context_tokens=384,
    )


def test_ranking_prompt_is_the_scorers_prompt(base_model, encoder: ExampleEncoder, squad) -> None:  # type: ignore[no-untyped-def]
    question, passages = squad
    for target in ("True", "False"):
        example = BlendExample("context_ranking", "s", "g", str(question["question"]), (passages[0],), target)
        encoded = encoder.encode(example)
        assert encoded is not None
        assert encoded.prompt_ids == base_model.encode_ranking(str(question["question"]), [passages[0]])[0]
        true_id, false_id = answer_token_ids(base_model.tokenizer, base_model.templates)
        assert encoded.completion_ids[0] == (true_id if target == "True" else false_id)
        assert encoded.completion_ids[-1] == base_model.tokenizer.eos_token_id


def test_long_passages_are_cut_like_the_scorer_cuts_them(base_model) -> None:  # type: ignore[no-untyped-def]
    short = ExampleEncoder(base_model.tokenizer, max_passage_tokens=40)
    scorer = base_model.with_options(scoring_options=short.ranking.options)
    passage = "word " * 500
    encoded = short.encode(BlendExample("context_ranking", "s", "g", "a question", (passage,), "True"))
    assert encoded is not None
    assert encoded.prompt_ids == scorer.encode_ranking("a question", [passage])[0]


def test_qa_prompt_is_the_generation_prompt(base_model, encoder: ExampleEncoder, squad) -> None:  # type: ignore[no-untyped-def]
    question, passages = squad
    answer = str(question["answers"][0])  # type: ignore[index]
    gold = next(
        json.loads(line)["text"]
        for line in (FIXTURES / "squad_passages.jsonl").read_text(encoding="utf-8").splitlines()
        if json.loads(line)["pid"] == question["gold_pid"]
    )
    contexts = (passages[1], gold, passages[2])
    encoded = encoder.encode(BlendExample("retrieval_qa", "s", "g", str(question["question"]), contexts, answer))
    assert encoded is not None
    assert encoded.prompt_ids == base_model.answer_prompt_ids(str(question["question"]), list(contexts), 384)
    assert base_model.tokenizer.decode(encoded.completion_ids) == answer + base_model.tokenizer.eos_token


def test_multi_ranking_prompt_is_the_core_rendering(base_model, encoder: ExampleEncoder, squad) -> None:  # type: ignore[no-untyped-def]
    question, passages = squad
    example = BlendExample("multi_ranking", "s", "g", str(question["question"]), tuple(passages), "2, 4")
    encoded = encoder.encode(example)
    assert encoded is not None
    text = render_multi_ranking_prompt(base_model.tokenizer, base_model.templates, str(question["question"]), passages)
    assert encoded.prompt_ids == base_model.tokenizer.encode(text, add_special_tokens=False)


def test_qa_example_whose_answer_was_cut_away_is_dropped(base_model) -> None:  # type: ignore[no-untyped-def]
    encoder = ExampleEncoder(base_model.tokenizer, max_context_tokens=8)
    passage = "The first words say nothing. " * 5 + "The answer is Zanzibar."
    example = BlendExample("context_qa", "s", "g", "Where?", (passage,), "Zanzibar")
    assert encoder.encode(example) is None
    rows, dropped = encode_blend(
        encoder, [example, BlendExample("context_qa", "s", "g", "Is it?", (passage,), "yes")], 4096
    )
    assert dropped["answer_not_in_context"] == 1 and len(rows) == 1


def test_loss_mask_covers_exactly_the_answer(encoder: ExampleEncoder) -> None:
    example = BlendExample("context_ranking", "s", "g", "q", ("p",), "False")
    rows, _ = encode_blend(encoder, [example], 4096)
    row = rows[0]
    assert len(row["input_ids"]) == len(row["completion_mask"])
    answer = [t for t, m in zip(row["input_ids"], row["completion_mask"]) if m]
    assert answer == encoder.completion("False") and row["completion_mask"][-len(answer) - 1] == 0


def test_ranking_rows_carry_the_scorers_answer_pair(base_model, encoder: ExampleEncoder) -> None:  # type: ignore[no-untyped-def]
    ranking = BlendExample("context_ranking", "s", "g", "q", ("p",), "True")
    qa = BlendExample("context_qa", "s", "g", "Is it?", ("p",), "yes")
    rows, _ = encode_blend(encoder, [ranking, qa], 4096)
    assert rows[0]["answer_pair"] == list(answer_token_ids(base_model.tokenizer, base_model.templates))
    assert "answer_pair" not in rows[1]


def test_ranking_rows_of_one_query_share_a_query_id(encoder: ExampleEncoder) -> None:
    examples = [
        BlendExample("context_ranking", "s", "g1", "q", ("p1",), "True"),
        BlendExample("context_ranking", "s", "g2", "other q", ("p2",), "True"),
        BlendExample("context_ranking", "s", "g1", "q", ("p3",), "False"),
        BlendExample("context_ranking", "t", "g1", "q", ("p4",), "False"),  # another source: another query
        BlendExample("context_qa", "s", "g1", "Is it?", ("p",), "yes"),
    ]
    rows, _ = encode_blend(encoder, examples, 4096)
    queries = [row.get("query") for row in rows]
    assert queries[0] == queries[2]
    assert len({queries[0], queries[1], queries[3]}) == 3
    assert queries[4] is None

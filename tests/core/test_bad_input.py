"""Bad input gets a clear error naming the problem, raised before any model work."""

from __future__ import annotations

import pytest

from rankrag import RankRAGModel

PASSAGES = ["Tokyo is the capital of Japan.", "Bananas are yellow."]


@pytest.mark.parametrize("query", ["", "   ", "\n\t "])
def test_empty_query_is_a_value_error_naming_it(embedded_model: RankRAGModel, query: str) -> None:
    with pytest.raises(ValueError, match="query is empty"):
        embedded_model.score(query, PASSAGES)
    with pytest.raises(ValueError, match="query is empty"):
        embedded_model.rerank(query, PASSAGES)
    with pytest.raises(ValueError, match="question is empty"):
        embedded_model.generate(query, PASSAGES)
    with pytest.raises(ValueError, match="question is empty"):
        embedded_model.stream(query, PASSAGES)


async def test_empty_query_in_async_calls(embedded_model: RankRAGModel) -> None:
    with pytest.raises(ValueError, match="query is empty"):
        await embedded_model.ascore(" ", PASSAGES)
    with pytest.raises(ValueError, match="query is empty"):
        await embedded_model.arerank("", PASSAGES)
    with pytest.raises(ValueError, match="alpha"):
        await embedded_model.arerank("capital?", PASSAGES, alpha=2.0)


def test_query_of_the_wrong_type(embedded_model: RankRAGModel) -> None:
    with pytest.raises(TypeError, match="query must be a string, got NoneType"):
        embedded_model.score(None, PASSAGES)  # type: ignore[arg-type]


async def test_no_passages_give_no_scores(embedded_model: RankRAGModel) -> None:
    assert embedded_model.score("capital?", []) == []
    assert embedded_model.score("capital?", ()) == []
    assert embedded_model.rerank("capital?", [], top_k=3) == []
    assert await embedded_model.ascore("capital?", []) == []
    assert await embedded_model.arerank("capital?", []) == []


@pytest.mark.parametrize("bad", [3, None, b"bytes", ["nested"]])
def test_non_string_passage_is_a_type_error_naming_its_index(embedded_model: RankRAGModel, bad: object) -> None:
    passages = ["fine", "also fine", bad]
    with pytest.raises(TypeError, match=r"passages\[2\] must be a string, got " + type(bad).__name__):
        embedded_model.score("capital?", passages)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"passages\[2\]"):
        embedded_model.rerank("capital?", passages)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"contexts\[2\]"):
        embedded_model.generate("capital?", passages)  # type: ignore[arg-type]


async def test_non_string_passage_in_async_calls(embedded_model: RankRAGModel) -> None:
    with pytest.raises(TypeError, match=r"passages\[1\]"):
        await embedded_model.ascore("capital?", ["fine", 1.5])  # type: ignore[list-item]


@pytest.mark.parametrize("passages", ["a single string", None, 42])
def test_passages_that_are_not_a_list(embedded_model: RankRAGModel, passages: object) -> None:
    with pytest.raises(TypeError, match="passages must be a list of strings"):
        embedded_model.score("capital?", passages)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": -2}, "batch_size"),
        ({"batch_size": True}, "batch_size"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"normalization": "softmax"}, "normalization"),
    ],
)
def test_bad_scoring_options(embedded_model: RankRAGModel, kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        embedded_model.score("capital?", PASSAGES, **kwargs)  # type: ignore[arg-type]


def test_bad_rerank_options(tiny_model: RankRAGModel) -> None:
    with pytest.raises(ValueError, match="top_k"):
        tiny_model.rerank("capital?", PASSAGES, top_k=0)
    for alpha in (1.5, -0.1, float("nan")):
        with pytest.raises(ValueError, match="alpha"):
            tiny_model.rerank("capital?", PASSAGES, alpha=alpha)
    with pytest.raises(ValueError, match="first-stage scores"):
        tiny_model.rerank("capital?", PASSAGES, alpha=0.5, first_stage_scores=[1.0])


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"max_new_tokens": 0}, "max_new_tokens"), ({"temperature": -0.5}, "temperature"), ({"top_p": 2.0}, "top_p")],
)
def test_bad_generation_options(embedded_model: RankRAGModel, kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        embedded_model.generate("capital?", PASSAGES, **kwargs)


BLANKS = ["", "   ", "\n\t"]


@pytest.mark.parametrize("blank", BLANKS)
def test_blank_passages_score_zero_without_the_model(embedded_model: RankRAGModel, blank: str) -> None:
    scores = embedded_model.score("What is the capital of Japan?", [blank, PASSAGES[0], blank])
    assert scores[0] == scores[2] == 0.0 and 0.0 < scores[1] < 1.0
    assert embedded_model.score("What is the capital of Japan?", [blank, blank]) == [0.0, 0.0]


async def test_blank_passages_score_zero_in_async_calls(embedded_model: RankRAGModel) -> None:
    assert (await embedded_model.ascore("What is the capital of Japan?", ["", " "])) == [0.0, 0.0]


def test_blank_passages_never_take_a_top_k_slot_or_reach_the_generator(embedded_model: RankRAGModel) -> None:
    passages = ["", PASSAGES[0], "  ", PASSAGES[1]]
    ranked = embedded_model.rerank("What is the capital of Japan?", passages, top_k=3, alpha=0.0)
    assert [p.index for p in ranked] == [1, 3]  # alpha 0 keeps retrieval order: blanks would lead if kept
    result = embedded_model.answer("What is the capital of Japan?", passages, top_k=5, max_new_tokens=4)
    assert all(p.text.strip() for p in result.contexts)
    question = "What is the capital of Japan?"
    with_blanks = embedded_model.generate(question, ["", PASSAGES[0], " "], max_new_tokens=6)
    assert with_blanks == embedded_model.generate(question, [PASSAGES[0]], max_new_tokens=6)

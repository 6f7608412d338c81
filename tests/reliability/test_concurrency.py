"""64 concurrent callers sharing one model: no exception, and every result equals the sequential result.

Each caller does one job (score, rerank, generate, stream, and the LangChain / LlamaIndex rerankers and LLMs
when those packages are installed) on inputs of its own, so answers crossing between callers would show.
The sequential results are computed once; 64 threads then run the synchronous paths and 64 asyncio tasks
the asynchronous ones. Scores are float32 (the CPU default); generation is greedy. The jobs run on a handle of
the shared weights whose system text is one short line, which halves the prompt length: the concurrency,
not the prompt, is under test.

Threads run exactly the computations of the sequential calls, so their results must be bit-identical.
Concurrent async scoring on one model is coalesced into shared forward passes (rankrag.model.coalescer), whose
batch composition depends on timing: those scores must equal the sequential ones up to float rounding
(1e-5; the measured difference is 0 or a few 1e-7) and rank the passages in the same order. The
bit-identical async mode (coalesce=False) is tested in test_determinism.py.

Reranks are compared by the returned order and each passage's ``llm_score`` (P("True")), not by the hybrid
relevance score: that one min-max normalises each signal over the few passages, so with two passages it reads
1.0 / 0.0 whatever the inputs, and it magnifies float rounding by one over the spread of the scores.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from reliability_budget import time_limit

from rankrag import PromptTemplates, RankRAGModel

pytestmark = pytest.mark.timeout(time_limit(600))

CALLERS = 64
NEW_TOKENS = 2
COALESCED_TOLERANCE = 1e-5


@dataclass(frozen=True)
class Job:
    """One caller's work: the same request through a synchronous and an asynchronous entry point."""

    kind: str
    run: Callable[[], Any]
    arun: Callable[[], Awaitable[Any]]
    coalesced: bool = False  # async scoring shares forward passes with other callers


def _first_sentence(text: str) -> str:
    return text.split(". ")[0][:100]


def _scores(items: list[Any]) -> list[tuple[Any, float]]:
    return [(key, float(score)) for key, score in items]


def core_jobs(model: RankRAGModel, question: str, passages: list[str], number: int) -> list[Job]:
    prompt = model.messages_prompt_ids([{"role": "user", "content": f"Say a colour ({number})."}])

    def ranked(result: list[Any]) -> list[tuple[Any, float]]:
        return _scores([(item.index, item.metadata["llm_score"]) for item in result])

    async def astream() -> str:
        return await asyncio.to_thread(lambda: "".join(model.stream_ids(prompt, max_new_tokens=NEW_TOKENS)))

    return [
        Job("score", lambda: model.score(question, passages[:1]), lambda: model.ascore(question, passages[:1]), True),
        Job(
            "rerank",
            lambda: ranked(model.rerank(question, passages)),
            lambda: model.arerank(question, passages),
            True,
        ),
        Job(
            "generate",
            lambda: model.generate(question, passages[:1], max_new_tokens=NEW_TOKENS),
            lambda: asyncio.to_thread(model.generate, question, passages[:1], max_new_tokens=NEW_TOKENS),
        ),
        Job("stream", lambda: "".join(model.stream_ids(prompt, max_new_tokens=NEW_TOKENS)), astream),
    ]


def langchain_jobs(model: RankRAGModel, question: str, passages: list[str], number: int) -> list[Job]:
    try:
        from langchain_core.documents import Document

        from rankrag_langchain import RankRAGLLM, RankRAGReranker
    except ImportError:
        return []
    reranker = RankRAGReranker(model=model, top_n=2)
    llm = RankRAGLLM(model=model, max_tokens=NEW_TOKENS)
    documents = [
        Document(page_content=p, metadata={} if i else {"source": f"doc-{number}"}) for i, p in enumerate(passages)
    ]
    message = f"Name a fruit ({number})."

    def kept(result: Any) -> list[tuple[Any, float]]:
        return _scores([(d.metadata["retrieval_rank"], d.metadata["llm_score"]) for d in result])

    async def acompress() -> list[tuple[Any, float]]:
        return kept(await reranker.acompress_documents(documents, question))

    async def ainvoke() -> str:
        return (await llm.ainvoke(message)).content  # type: ignore[return-value]

    async def astream() -> str:
        return "".join([chunk.content async for chunk in llm.astream(message)])  # type: ignore[misc]

    return [
        Job("langchain reranker", lambda: kept(reranker.compress_documents(documents, question)), acompress, True),
        Job("langchain llm", lambda: llm.invoke(message).content, ainvoke),
        Job("langchain stream", lambda: "".join(c.content for c in llm.stream(message)), astream),  # type: ignore[misc]
    ]


def llamaindex_jobs(model: RankRAGModel, question: str, passages: list[str], number: int) -> list[Job]:
    try:
        from llama_index.core.schema import NodeWithScore, TextNode

        from rankrag_llamaindex import RankRAGLLM, RankRAGReranker
    except ImportError:
        return []
    reranker = RankRAGReranker(model=model, top_n=2)
    llm = RankRAGLLM(model=model, max_new_tokens=NEW_TOKENS)
    nodes = [
        NodeWithScore(node=TextNode(text=p, id_=f"{number}-{i}"), score=None if i else 0.5)
        for i, p in enumerate(passages)
    ]
    prompt = f"Name an animal ({number})."

    def kept(result: Any) -> list[tuple[Any, float]]:
        return _scores([(n.node.id_, n.node.metadata["llm_score"]) for n in result])

    async def apostprocess() -> list[tuple[Any, float]]:
        return kept(await reranker.apostprocess_nodes(nodes, query_str=question))

    async def acomplete() -> str:
        return (await llm.acomplete(prompt)).text

    async def astream() -> str:
        text = ""
        async for response in await llm.astream_complete(prompt):
            text = response.text
        return text

    def stream() -> str:
        text = ""
        for response in llm.stream_complete(prompt):
            text = response.text
        return text

    return [
        Job(
            "llamaindex reranker",
            lambda: kept(reranker.postprocess_nodes(nodes, query_str=question)),
            apostprocess,
            True,
        ),
        Job("llamaindex llm", lambda: llm.complete(prompt).text, acomplete),
        Job("llamaindex stream", stream, astream),
    ]


@pytest.fixture(scope="module")
def jobs(model, squad_passages, squad_questions) -> list[Job]:  # type: ignore[no-untyped-def]
    """64 jobs, each on a question and passages of its own, cycling through every kind of entry point."""
    model = model.with_options(templates=PromptTemplates(system="Be brief."))
    texts = [_first_sentence(p["text"]) for p in squad_passages]
    questions = [q["question"] for q in squad_questions]
    result: list[Job] = []
    number = 0
    while len(result) < CALLERS:
        question, passages = (
            questions[number % len(questions)],
            [texts[(2 * number) % len(texts)], texts[(2 * number + 1) % len(texts)]],
        )
        for make in (core_jobs, langchain_jobs, llamaindex_jobs):
            result.extend(make(model, question, passages, number))
        number += 1
    return result[:CALLERS]


@pytest.fixture(scope="module")
def sequential(jobs: list[Job]) -> list[Any]:
    return [job.run() for job in jobs]


def _normalise(value: Any) -> Any:
    """Async reranks return ScoredPassage lists; compare them as (index, llm_score) like the sync side."""
    if isinstance(value, list) and value and hasattr(value[0], "index") and hasattr(value[0], "score"):
        return _scores([(item.index, item.metadata["llm_score"]) for item in value])
    return value


def assert_same_within_rounding(got: Any, expected: Any) -> None:
    if isinstance(expected, list) and expected and isinstance(expected[0], tuple):
        assert [key for key, _ in got] == [key for key, _ in expected] or _near_tie(expected), "ranking order changed"
        assert sorted(s for _, s in got) == pytest.approx(sorted(s for _, s in expected), abs=COALESCED_TOLERANCE)
    else:
        assert got == pytest.approx(expected, abs=COALESCED_TOLERANCE)


def _near_tie(ranked: list[tuple[Any, float]]) -> bool:
    return any(abs(a - b) <= COALESCED_TOLERANCE for (_, a), (_, b) in zip(ranked, ranked[1:]))


def test_the_jobs_cover_every_entry_point_with_distinct_inputs(jobs: list[Job], sequential: list[Any]) -> None:
    assert len(jobs) == CALLERS
    kinds = {job.kind for job in jobs}
    assert {"score", "rerank", "generate", "stream"} <= kinds
    scores = [repr(result) for job, result in zip(jobs, sequential) if job.kind in ("score", "rerank")]
    assert len(set(scores)) == len(scores), "scoring callers must have inputs (and so results) of their own"


def test_64_threads_sharing_one_model_get_the_sequential_results(jobs: list[Job], sequential: list[Any]) -> None:
    start = threading.Barrier(CALLERS)

    def call(job: Job) -> Any:
        start.wait()  # all 64 callers enter the model together
        return job.run()

    with ThreadPoolExecutor(max_workers=CALLERS) as pool:
        results = list(pool.map(call, jobs))
    for job, got, expected in zip(jobs, results, sequential):
        assert got == expected, f"{job.kind}: a concurrent call differs from the same call made alone"


async def test_64_asyncio_tasks_sharing_one_model_get_the_sequential_results(
    jobs: list[Job], sequential: list[Any]
) -> None:
    results = await asyncio.gather(*(job.arun() for job in jobs))
    for job, got, expected in zip(jobs, results, sequential):
        got = _normalise(got)
        if job.coalesced:
            assert_same_within_rounding(got, expected)
        else:
            assert got == expected, f"{job.kind}: a concurrent async call differs from the same call made alone"

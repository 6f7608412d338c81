"""Scoring and generation run without warnings: no Python warning, no transformers logging warning.

transformers reports deprecated usage (e.g. the ``past_key_values=`` forward keyword, deprecated in 5.24
for ``cache=``) through ``logger.warning_once``, which is emitted once per process. The test clears that
cache and listens on the library's root logger at WARNING level, so an earlier test in the session that
already triggered a message cannot hide it here.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
from transformers.utils import logging as transformers_logging

QUESTION = "What do scientists learn from sediment deposits in the Amazon basin?"
PASSAGES = [
    "Sediment cores from the Amazon basin record past floods and changes in the river's course.",
    "The Eiffel Tower was completed in 1889 for the World's Fair in Paris.",
    "Scientists date the layers to reconstruct rainfall over thousands of years.",
]


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def no_warnings() -> Iterator[Callable[[Callable[[], object]], object]]:
    """``check(call)`` runs ``call`` and fails on any Python warning or transformers log record >= WARNING."""
    handler = _Records()
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_warning()
    # the standard logging API: transformers 5.0's remove_handler asserts the opposite of what it checks
    library_logger = logging.getLogger("transformers")
    library_logger.addHandler(handler)

    def check(call: Callable[[], object]) -> object:
        # ``warning_once`` is an lru_cache shared by every logger: without clearing it a message already
        # logged earlier in the session would be swallowed here.
        transformers_logging.warning_once.cache_clear()
        handler.records.clear()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = call()
        messages = [f"{w.category.__name__}: {w.message}" for w in caught]
        messages += [f"[{r.name}] {r.levelname}: {r.getMessage()}" for r in handler.records]
        assert not messages, "unexpected warnings:\n" + "\n".join(messages)
        return result

    try:
        yield check
    finally:
        library_logger.removeHandler(handler)
        transformers_logging.set_verbosity(verbosity)


def test_scoring_emits_no_warning(embedded_model, no_warnings) -> None:  # type: ignore[no-untyped-def]
    scores = no_warnings(lambda: embedded_model.score(QUESTION, PASSAGES))
    assert len(scores) == len(PASSAGES)


def test_uncached_scoring_emits_no_warning(embedded_model, no_warnings) -> None:  # type: ignore[no-untyped-def]
    handle = embedded_model.with_options(scoring_options=replace(embedded_model.scoring_options, prefix_cache=False))
    scores = no_warnings(lambda: handle.score(QUESTION, PASSAGES))
    assert len(scores) == len(PASSAGES)


def test_generation_emits_no_warning(embedded_model, no_warnings) -> None:  # type: ignore[no-untyped-def]
    text = no_warnings(lambda: embedded_model.generate(QUESTION, PASSAGES[:2], max_new_tokens=4))
    assert isinstance(text, str)


def test_streaming_emits_no_warning(embedded_model, no_warnings) -> None:  # type: ignore[no-untyped-def]
    # The stream generates in a worker thread; catch_warnings records its warnings too (same process-wide
    # filters), and the handler sees its log records.
    chunks = no_warnings(lambda: list(embedded_model.stream(QUESTION, PASSAGES[:2], max_new_tokens=4)))
    assert isinstance(chunks, list)


def test_loading_the_shipped_adapter_emits_no_warning(no_warnings: Callable[[Callable[[], object]], object]) -> None:
    # the registry would return the session's model; float16 is a spec no other test loads, so this loads afresh
    from rankrag import RankRAGModel

    model = no_warnings(lambda: RankRAGModel.load(dtype="float16", device="cpu"))
    assert isinstance(model, RankRAGModel)

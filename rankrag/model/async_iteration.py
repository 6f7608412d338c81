"""Blocking iterators consumed from async code without blocking the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


async def iterate_in_thread(iterator: Iterator[T]) -> AsyncIterator[T]:
    """Yield the items of a blocking ``iterator``, each ``next`` in a worker thread."""
    try:
        while (item := await asyncio.to_thread(next, iterator, _DONE)) is not _DONE:
            yield item  # type: ignore[misc]  # _DONE is the only non-T value and was excluded
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:  # an abandoned generator releases its resources off the event loop too
            await asyncio.to_thread(close)

"""Process-wide registry: one loaded model per ModelSpec, loaded once even under concurrent first use."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class SharedRegistry(Generic[T]):
    def __init__(self) -> None:
        self._items: dict[Hashable, T] = {}
        self._locks: dict[Hashable, threading.Lock] = {}
        self._guard = threading.Lock()

    def get_or_create(self, key: Hashable, factory: Callable[[], T]) -> T:
        with self._guard:
            if key in self._items:
                return self._items[key]
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # loads of different keys proceed in parallel; the same key loads once
            with self._guard:
                if key in self._items:
                    return self._items[key]
            item = factory()
            with self._guard:
                self._items[key] = item
                self._locks.pop(key, None)
            return item

    def get(self, key: Hashable) -> T | None:
        with self._guard:
            return self._items.get(key)

    def clear(self) -> None:
        with self._guard:
            self._items.clear()

    def __len__(self) -> int:
        with self._guard:
            return len(self._items)

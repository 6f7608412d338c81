"""The unit the index stores: one piece of one document, with the id that makes re-indexing idempotent."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chunk:
    """A piece of one document, as stored in the index."""

    id: str
    text: str
    source: str
    chunk_index: int

    @property
    def metadata(self) -> dict[str, str | int]:
        return {"source": self.source, "chunk_index": self.chunk_index}

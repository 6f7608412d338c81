"""The one seam between :class:`RankRAGModel` and where its forward passes run.

A backend takes prompts already encoded by the model (ranking prompts as :class:`RankingRequest`, answer
prompts as token ids) and runs them: :class:`rankrag.model.local_backend.LocalBackend` on weights loaded in
this process, :class:`rankrag.served.http_backend.HTTPBackend` on a model server. ``RankRAGModel`` owns
everything above that line once (prompt encoding, input checks, deduplication, fusion, calibration), so a
served model and a loaded one behave alike by construction.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Generic, Protocol, TypeVar, overload, runtime_checkable

from transformers import PreTrainedTokenizerBase

from rankrag.model.generation import Generation, GenerationOptions
from rankrag.model.ranking_prompts import RankingRequest
from rankrag.model.roles import Role

T = TypeVar("T")


@runtime_checkable
class Backend(Protocol):
    """Runs encoded prompts for a :class:`RankRAGModel`; sync and async twins return the same results."""

    @property
    def name(self) -> str:
        """The model's display name (used for its calibration lookup and in messages)."""
        ...

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase: ...

    @property
    def context_window(self) -> int:
        """Most tokens one prompt plus its generated tokens may take."""
        ...

    @property
    def device(self) -> object: ...

    @property
    def adapters(self) -> dict[Role, str | None]:
        """Each role's adapter (None: the base weights), as far as the backend knows them."""
        ...

    def score(self, request: RankingRequest) -> list[float]:
        """P(True) for each prompt of ``request``, in order, with the ranker's weights."""
        ...

    async def ascore(self, request: RankingRequest) -> list[float]: ...

    def generate(self, prompt_ids: Sequence[int], options: GenerationOptions) -> Generation:
        """A generation from ``prompt_ids`` with the answerer's weights."""
        ...

    async def agenerate(self, prompt_ids: Sequence[int], options: GenerationOptions) -> Generation: ...

    def stream(self, prompt_ids: Sequence[int], options: GenerationOptions) -> Iterator[str]:
        """Text chunks as they are generated; closing the iterator early stops generation."""
        ...

    def calibration(self) -> dict[str, Any] | None:
        """The stored fusion calibration of this model, or None (looked up once; see :meth:`reload_calibration`)."""
        ...

    def reload_calibration(self) -> None: ...

    def describe(self) -> str:
        """Where it runs, for ``repr``: ``device=..., dtype=...`` or the server's address."""
        ...

    def close(self) -> None:
        """Release connections (nothing to do for loaded weights, which the registry keeps)."""
        ...


class HasBackend(Protocol):
    backend: Any


class BackendAttribute(Generic[T]):
    """A read-only attribute of a model that is its backend's attribute of the same name."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type) -> BackendAttribute[T]: ...
    @overload
    def __get__(self, instance: HasBackend, owner: type) -> T: ...
    def __get__(self, instance: HasBackend | None, owner: type) -> BackendAttribute[T] | T:
        if instance is None:
            return self
        value: T = getattr(instance.backend, self.name)
        return value

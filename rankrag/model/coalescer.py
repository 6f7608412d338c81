"""The score coalescer: concurrent score requests on one in-process model share forward passes.

Each loaded model gets one :class:`ScoreCoalescer`, a micro-batching queue served by a worker thread.
The worker takes the first waiting request, waits up to ``max_wait_s`` for more (requests that arrive
while a forward pass runs simply wait for the next round), groups what it has by scoring options, and
scores each group's passages together: in length-sorted batches of ``batch_size`` and, with the
passage-first prompt, behind one shared prefix for all queries. Each caller gets its own scores back,
equal to what it would get alone up to float rounding.

The worker holds no reference to a model between rounds and exits after ``idle_exit_s`` without work.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
import weakref
from collections.abc import Hashable
from concurrent.futures import Future
from dataclasses import dataclass, field

from transformers import PreTrainedModel

from rankrag.model.forward_scoring import score_prompt_sets
from rankrag.model.ranking_prompts import SharedPrefixPrompts
from rankrag.model.scoring_options import ScoringOptions


@dataclass(frozen=True)
class ScoreRequest:
    """One caller's passages for one query, already tokenized."""

    model: PreTrainedModel
    prompts: SharedPrefixPrompts
    options: ScoringOptions
    true_id: int
    false_id: int
    pad_id: int

    def group_key(self) -> Hashable:
        """Requests with equal keys may share forward passes (truncation was applied when encoding)."""
        options = self.options
        return (
            options.batch_size,
            options.normalization,
            options.prefix_cache,
            self.true_id,
            self.false_id,
            self.pad_id,
        )


def score_requests(requests: list[ScoreRequest]) -> list[list[float]]:
    """Score requests of one group (same model and :meth:`ScoreRequest.group_key`) together."""
    first = requests[0]
    return score_prompt_sets(
        first.model,
        [request.prompts for request in requests],
        true_id=first.true_id,
        false_id=first.false_id,
        pad_id=first.pad_id,
        options=first.options,
    )


@dataclass
class _Pending:
    request: ScoreRequest
    future: Future[list[float]] = field(default_factory=Future)


class ScoreCoalescer:
    """Micro-batching queue for one model. ``max_wait_s``: how long the first request of a round waits for
    company; ``max_batch_passages``: most passages one round takes (later requests go to the next round)."""

    def __init__(self, *, max_wait_s: float = 0.005, max_batch_passages: int = 512, idle_exit_s: float = 2.0):
        if max_wait_s < 0 or max_batch_passages < 1 or idle_exit_s <= 0:
            raise ValueError("max_wait_s must be >= 0, max_batch_passages >= 1 and idle_exit_s > 0")
        self.max_wait_s = max_wait_s
        self.max_batch_passages = max_batch_passages
        self.idle_exit_s = idle_exit_s
        self.rounds = 0  # forward rounds served, for benchmarks and tests
        self._queue: queue.Queue[_Pending] = queue.Queue()
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None

    def submit(self, request: ScoreRequest) -> Future[list[float]]:
        """Queue a request; the future resolves to its scores (or raises the scoring error)."""
        pending = _Pending(request)
        with self._lock:
            self._queue.put(pending)
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._serve, name="rankrag-score-coalescer", daemon=True)
                self._worker.start()
        return pending.future

    async def score(self, request: ScoreRequest) -> list[float]:
        return await asyncio.wrap_future(self.submit(request))

    def _serve(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=self.idle_exit_s)
            except queue.Empty:
                with self._lock:  # submit() holds the lock while queueing, so nothing slips in unserved
                    if self._queue.empty():
                        self._worker = None
                        return
                continue
            self._run_round(self._collect(first))
            del first  # hold no model between rounds

    def _collect(self, first: _Pending) -> list[_Pending]:
        batch, passages = [first], len(first.request.prompts.tails)
        deadline = time.monotonic() + self.max_wait_s
        while passages < self.max_batch_passages:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            batch.append(item)
            passages += len(item.request.prompts.tails)
        return batch

    def _run_round(self, batch: list[_Pending]) -> None:
        self.rounds += 1
        groups: dict[Hashable, list[_Pending]] = {}
        for pending in batch:
            if pending.future.set_running_or_notify_cancel():
                groups.setdefault((id(pending.request.model), pending.request.group_key()), []).append(pending)
        for members in groups.values():
            try:
                results = score_requests([pending.request for pending in members])
            except Exception as error:  # noqa: BLE001 - handed to every caller of the group
                for pending in members:
                    pending.future.set_exception(error)
                continue
            for pending, scores in zip(members, results):
                pending.future.set_result(scores)
        batch.clear()


_COALESCERS: weakref.WeakKeyDictionary[PreTrainedModel, ScoreCoalescer] = weakref.WeakKeyDictionary()
_COALESCERS_GUARD = threading.Lock()


def coalescer_for(model: PreTrainedModel) -> ScoreCoalescer:
    """The model's shared coalescer (every handle on the same weights uses the same one)."""
    with _COALESCERS_GUARD:
        coalescer = _COALESCERS.get(model)
        if coalescer is None:
            coalescer = _COALESCERS[model] = ScoreCoalescer()
        return coalescer

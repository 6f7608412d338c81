"""The in-process backend: weights loaded here, scored with the shared-prefix cache and the coalescer.

Holds one loaded causal LM and its tokenizer. :func:`local_source` turns what a user passes to
``RankRAGModel.load`` into a registry key and a loader, so equal loads share one set of weights.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import AbstractContextManager
from functools import partial
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from rankrag.model import calibration_store, generation, loading, roles
from rankrag.model.coalescer import ScoreRequest, coalescer_for, score_requests
from rankrag.model.generation import Generation, GenerationOptions
from rankrag.model.ranking_prompts import RankingRequest

ModelSource = str | os.PathLike[str] | tuple[PreTrainedModel, PreTrainedTokenizerBase] | None


class LocalBackend:
    """Forward passes on ``model`` in this process. Build it with :func:`local_source` (or directly, for a
    model and tokenizer already prepared with :func:`loading.prepare_for_inference`)."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        name: str,
        spec: loading.ModelSpec | None = None,
    ) -> None:
        self.model = model
        self._tokenizer = tokenizer
        self._name = name
        self.spec = spec
        self._calibration: dict[str, Any] | None = None
        self._calibration_read = False

    @classmethod
    def from_spec(cls, spec: loading.ModelSpec) -> LocalBackend:
        model, tokenizer = loading.load_model_and_tokenizer(spec)
        return cls(model, tokenizer, name=spec.display_name, spec=spec)

    @property
    def name(self) -> str:
        return self._name

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        return self._tokenizer

    @property
    def context_window(self) -> int:
        return int(getattr(self.model.config, "max_position_embeddings", 2048) or 2048)

    @property
    def device(self) -> object:
        return next(self.model.parameters()).device

    @property
    def adapters(self) -> dict[roles.Role, str | None]:
        """Each role's adapter (None: the base weights); empty for a model built from a (model, tokenizer) pair."""
        if self.spec is None:
            return {}
        return {"ranker": self.spec.ranker_adapter, "answerer": self.spec.answerer_adapter}

    # ------------------------------------------------------------------ ranking
    def score_request(self, request: RankingRequest) -> ScoreRequest:
        """``request`` bound to these weights, as the coalescer takes it."""
        return ScoreRequest(
            model=self.model,
            prompts=request.prompts,
            options=request.options,
            true_id=request.true_id,
            false_id=request.false_id,
            pad_id=int(self.tokenizer.pad_token_id),
        )

    def score(self, request: RankingRequest) -> list[float]:
        return score_requests([self.score_request(request)])[0]

    async def ascore(self, request: RankingRequest) -> list[float]:
        """Off the event loop; concurrent calls share forward passes unless ``ScoringOptions(coalesce=False)``."""
        if not request.options.coalesce:
            return await asyncio.to_thread(self.score, request)
        return await coalescer_for(self.model).score(self.score_request(request))

    # --------------------------------------------------------------- generation
    def _answerer_weights(self) -> Callable[[], AbstractContextManager[None]]:
        return partial(roles.weights_of, self.model, "answerer")

    def generate(self, prompt_ids: Sequence[int], options: GenerationOptions) -> Generation:
        return generation.generate(self.model, self.tokenizer, prompt_ids, options, self._answerer_weights())

    async def agenerate(self, prompt_ids: Sequence[int], options: GenerationOptions) -> Generation:
        return await asyncio.to_thread(self.generate, prompt_ids, options)

    def stream(self, prompt_ids: Sequence[int], options: GenerationOptions) -> Iterator[str]:
        return generation.stream(self.model, self.tokenizer, prompt_ids, options, self._answerer_weights())

    # -------------------------------------------------------------- the rest
    def calibration(self) -> dict[str, Any] | None:
        if not self._calibration_read:
            self._calibration = calibration_store.load_calibration(self.spec, self.name)
            self._calibration_read = True
        return self._calibration

    def reload_calibration(self) -> None:
        self._calibration_read = False

    def describe(self) -> str:
        return f"device={self.device!s}, dtype={self.model.dtype}"

    def close(self) -> None:
        """Loaded weights stay in the registry (``clear_registry`` frees them); there is nothing to close."""


def local_source(
    source: ModelSource,
    dtype: str,
    quantization: str | None,
    device: str,
    adapter: loading.AdapterChoice,
    answerer_adapter: loading.AdapterChoice,
    trust_remote_code: bool,
    allow_pickle: bool,
) -> tuple[Hashable, Callable[[], LocalBackend]]:
    """The registry key of a load and the function that loads it: equal keys share one set of weights."""
    if isinstance(source, tuple):
        model, tokenizer = source
        name = getattr(model.config, "name_or_path", "") or type(model).__name__
        return ("object", id(model), id(tokenizer)), lambda: LocalBackend(
            *loading.prepare_for_inference(model, tokenizer), name=name
        )
    resolved_device = loading.resolve_device(device)
    directory, gguf_file = loading.resolve_source(source)
    ranker_adapter = loading.resolve_adapter(adapter, directory, gguf_file)
    spec = loading.ModelSpec(
        source=directory,
        gguf_file=gguf_file,
        dtype=loading.resolve_dtype(dtype, resolved_device),
        quantization=loading.resolve_quantization(quantization, resolved_device),
        device=resolved_device,
        ranker_adapter=ranker_adapter,
        answerer_adapter=loading.resolve_answerer_adapter(answerer_adapter, ranker_adapter, directory),
        trust_remote_code=trust_remote_code,
        allow_pickle=allow_pickle,
    )
    return spec, lambda: LocalBackend.from_spec(spec)

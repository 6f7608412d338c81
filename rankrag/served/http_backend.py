"""The HTTP backend: a :class:`RankRAGModel`'s forward passes on a model server (llama.cpp, vLLM, ...).

Prompts arrive encoded by the model exactly as in-process, and go to the server's ``/v1/completions``: as
token ids where the server takes them (vLLM, llama.cpp's ``llama-server``), else as their text
(llama-cpp-python's server). A ranking request asks for one token with logprobs; P(True) is normalised like
the in-process scorer (``binary``: P(True) / (P(True) + P(False)); ``vocab``: P(True) under the whole
vocabulary). Generation uses the same endpoint, streamed with server-sent events for :meth:`HTTPBackend.stream`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import numbers
import os
from collections.abc import AsyncIterator, Awaitable, Iterator, Mapping, Sequence
from typing import Any

from rankrag.model.calibration_store import load_calibration, read_calibration_file
from rankrag.model.generation import Generation, GenerationOptions, cut_at_stop, stop_filtered
from rankrag.model.prompts import PromptTemplates
from rankrag.model.ranking_prompts import RankingRequest
from rankrag.model.roles import ROLES, Role
from rankrag.model.scoring_options import ScoringOptions, check_normalization
from rankrag.served import protocol
from rankrag.served.client import ServerClient
from rankrag.served.errors import ServerDisconnectedError, ServerResponseError
from rankrag.served.handshake import handshake
from rankrag.served.tokenizers import TokenizerSource, resolve_tokenizer
from rankrag.served.wire import BIAS, DEFAULT_CONTEXT_WINDOW, ServerWire

logger = logging.getLogger(__name__)


async def _all_or_cancel(awaitables: Sequence[Awaitable[float]]) -> list[float]:
    """Run concurrently; on the first failure cancel the rest and raise it (no stray requests)."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            error = task.exception()
            if error is not None:
                raise error
        return [task.result() for task in tasks]
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class HTTPBackend:
    """Scores and generates on a model server; holds no weights. Build it with :meth:`connect`."""

    def __init__(self, wire: ServerWire, *, top_logprobs: int = 20, calibration: dict[str, Any] | None = None) -> None:
        self.wire = wire
        self.client = wire.client
        self.info = wire.info
        self.tokenizer = wire.tokenizer
        self.stats = wire.stats
        self.top_logprobs = top_logprobs
        self._given_calibration = calibration
        self._calibration = calibration
        self._calibration_read = calibration is not None

    @classmethod
    def connect(
        cls,
        base_url: str,
        *,
        model: str,
        tokenizer: TokenizerSource = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_concurrency: int = 16,
        templates: PromptTemplates,
        scoring_options: ScoringOptions,
        context_window: int | None = None,
        strict_tokens: bool = False,
        top_logprobs: int = 20,
        max_attempts: int = 4,
        calibration: str | os.PathLike[str] | None = None,
        role_models: Mapping[str, str] | None = None,
    ) -> HTTPBackend:
        """Check the arguments, connect, and run the handshake; see :meth:`RankRAGModel.connect`."""
        if not isinstance(model, str) or not model.strip():
            raise ValueError(f"model must be the served model's name (as in the server's /v1/models), got {model!r}")
        if context_window is not None and (
            isinstance(context_window, bool) or not isinstance(context_window, int) or context_window < 2
        ):
            raise ValueError(f"context_window must be None or an integer >= 2, got {context_window!r}")
        if isinstance(top_logprobs, bool) or not isinstance(top_logprobs, int) or top_logprobs < 1:
            raise ValueError(f"top_logprobs must be a positive integer, got {top_logprobs!r}")
        stored = read_calibration_file(calibration) if calibration is not None else None
        tok = resolve_tokenizer(tokenizer)
        client = ServerClient(
            base_url, api_key=api_key, timeout=timeout, max_concurrency=max_concurrency, max_attempts=max_attempts
        )
        try:
            info = client.run(
                handshake(
                    client,
                    model,
                    tok,
                    templates,
                    scoring_options,
                    context_window=context_window,
                    tokenizer_given=tokenizer is not None,
                    top_logprobs=top_logprobs,
                    role_models=role_models,
                )
            )
        except ServerDisconnectedError as error:
            client.close()
            raise ServerDisconnectedError(f"RankRAGModel.connect could not finish its handshake: {error}") from error
        except BaseException:
            client.close()
            raise
        for note in info.notes:
            logger.info("%s: %s", client.base_url, note)
        wire = ServerWire(client, tok, info, strict_tokens=strict_tokens)
        return cls(wire, top_logprobs=top_logprobs, calibration=stored)

    # ------------------------------------------------------------------ basics
    @property
    def name(self) -> str:
        return self.info.model

    @property
    def context_window(self) -> int:
        """The server's context window: reported by the server, given to connect, learned from a
        context-length error, else 2048 (llama-cpp-python's default ``--n_ctx``)."""
        return self.wire.known_window() or DEFAULT_CONTEXT_WINDOW

    @property
    def device(self) -> object:
        return f"server:{self.client.base_url}"

    @property
    def adapters(self) -> dict[Role, str | None]:
        """Each role's adapter as the calibration records it (``rankrag export``); {} when it records none. Which
        served model answers for each role is :attr:`ServerInfo.role_models`."""
        record = self.calibration() or {}
        return {role: record.get(f"{role}_adapter") for role in ROLES if f"{role}_adapter" in record}

    def calibration(self) -> dict[str, Any] | None:
        """The calibration given to connect, else the one stored under the served model's name."""
        if not self._calibration_read:
            self._calibration = load_calibration(None, self.name)
            self._calibration_read = True
        return self._calibration

    def reload_calibration(self) -> None:
        self._calibration = self._given_calibration
        self._calibration_read = self._given_calibration is not None

    def describe(self) -> str:
        return f"url={self.client.base_url!r}, server={self.info.flavor!r}, prompts={self.info.prompt_mode!r}"

    def close(self) -> None:
        """Close the connections (every model handle on this backend shares them)."""
        self.client.close()

    # ------------------------------------------------------------------ ranking
    def score(self, request: RankingRequest) -> list[float]:
        """P("True") for each prompt, scored on the server; every prompt of the request is sent concurrently."""
        return self.client.run(self._score_all(request))

    async def ascore(self, request: RankingRequest) -> list[float]:
        return await self.client.call(self._score_all(request))

    async def _score_all(self, request: RankingRequest) -> list[float]:
        normalization = check_normalization(request.options.normalization)
        return await _all_or_cancel(
            [self._score_one(ids, request.true_id, request.false_id, normalization) for ids in request.prompts.full()]
        )

    async def _score_one(self, ids: list[int], true_id: int, false_id: int, normalization: str) -> float:
        self.wire.check_fits(ids, 1)
        prompt = self.wire.prompt(ids)
        needed = (true_id,) if normalization == "vocab" else (true_id, false_id)
        # Equal bias on both answers keeps their ratio and puts them on top for servers whose logprobs are
        # taken after the bias; P(True) under the whole vocabulary must not be biased.
        bias = {true_id: BIAS, false_id: BIAS} if normalization == "binary" and self.info.logit_bias else None
        first = await self.wire.complete_one_token(prompt, logprobs=self.top_logprobs, bias=bias)
        values: dict[int, float] = {}
        for token in needed:
            value = first.logprob(token, self.wire.token_name(token))
            values[token] = await self._forced_logprob(prompt, token) if value is None else value
        if normalization == "vocab":
            return math.exp(values[true_id])
        lt, lf = values[true_id], values[false_id]
        if lt == lf == -math.inf:
            raise ServerResponseError(
                f"the model server at {self.client.base_url} gives both answer tokens probability 0; "
                f"P(True) is undefined"
            )
        return 1.0 / (1.0 + math.exp(min(700.0, lf - lt))) if lf != -math.inf else 1.0

    async def _forced_logprob(self, prompt: list[int] | str, token: int) -> float:
        """The logprob of a token missing from the top logprobs: bias the server into choosing it and read the
        chosen token's logprob, which servers report before the bias (checked at connect)."""
        word = self.wire.token_name(token)
        if not (self.info.raw_logprobs and self.info.logit_bias):
            raise ServerResponseError(
                f"the model server at {self.client.base_url} did not report the logprob of {word!r} (token {token}) "
                f"among its top {self.top_logprobs}, and cannot be asked for it (its logprobs "
                f"{'are taken after logit_bias' if self.info.logit_bias else 'ignore logit_bias'}); "
                f"connect with a larger top_logprobs or use normalization='binary'"
            )
        self.stats["forced_lookups"] += 1
        first = await self.wire.complete_one_token(prompt, logprobs=1, bias={token: BIAS})
        if not first.sampled.matches(token, word):
            raise ServerResponseError(
                f"the model server at {self.client.base_url} ignored logit_bias when asked for the logprob of "
                f"{word!r} (token {token}); it chose {first.sampled.text!r}"
            )
        return first.sampled.logprob

    # --------------------------------------------------------------- generation
    def _check_prompt(self, prompt_ids: Sequence[int], options: GenerationOptions) -> list[int]:
        if not prompt_ids:
            raise ValueError("prompt_ids is empty; the prompt needs at least one token")
        vocabulary = len(self.tokenizer)
        if not all(
            isinstance(i, numbers.Integral) and not isinstance(i, bool) and 0 <= i < vocabulary for i in prompt_ids
        ):
            raise ValueError(f"prompt_ids must be token ids in [0, {vocabulary})")
        ids = [int(i) for i in prompt_ids]
        self.wire.check_fits(ids, options.max_new_tokens)
        return ids

    def _generation_payload(self, ids: list[int], options: GenerationOptions, *, stream: bool) -> dict[str, Any]:
        sampling = options.temperature > 0
        payload: dict[str, Any] = {
            "model": self.info.model_for("answerer"),
            "prompt": self.wire.prompt(ids),
            "max_tokens": options.max_new_tokens,
            "temperature": float(options.temperature),
            "top_p": float(options.top_p) if sampling else 1.0,
            "stream": stream,
            **self.wire.extras(sampling=sampling),
        }
        if options.stop:
            payload["stop"] = list(options.stop)
        if options.seed is not None and sampling:
            payload["seed"] = int(options.seed)
        if self.info.flavor == "vllm":
            payload.pop("return_tokens_as_token_ids", None)
        return payload

    def generate(self, prompt_ids: Sequence[int], options: GenerationOptions) -> Generation:
        """Generate on the server, with the served model of the answerer's role."""
        return self.client.run(self._generate(self._check_prompt(prompt_ids, options), options))

    async def agenerate(self, prompt_ids: Sequence[int], options: GenerationOptions) -> Generation:
        return await self.client.call(self._generate(self._check_prompt(prompt_ids, options), options))

    async def _generate(self, ids: list[int], options: GenerationOptions) -> Generation:
        payload = self._generation_payload(ids, options, stream=False)
        url = self.client.url("/v1/completions")
        self.stats["requests"] += 1
        response = await self.client.request("POST", "/v1/completions", payload)
        text, reason = protocol.completion_text(response, url)
        prompt_tokens, completion_tokens = protocol.usage(response)
        text, stopped = cut_at_stop(text, options.stop)
        if completion_tokens is None:
            completion_tokens = len(self.tokenizer.encode(text, add_special_tokens=False)) if text else 0
        return Generation(
            text=text.strip() if not options.stop else text,
            prompt_tokens=len(ids) if prompt_tokens is None else prompt_tokens,
            completion_tokens=completion_tokens,
            finish_reason="stop" if stopped else (reason or "stop"),
        )

    def stream(self, prompt_ids: Sequence[int], options: GenerationOptions) -> Iterator[str]:
        """Text chunks as the server streams them (server-sent events); stopping early cancels the request."""
        ids = self._check_prompt(prompt_ids, options)
        return stop_filtered(self.client.iterate(lambda: self._stream_raw(ids, options)), options.stop)

    async def _stream_raw(self, ids: list[int], options: GenerationOptions) -> AsyncIterator[str]:
        payload = self._generation_payload(ids, options, stream=True)
        url = self.client.url("/v1/completions")
        self.stats["requests"] += 1
        async for event in self.client.stream("/v1/completions", payload):
            text, _ = protocol.chunk_text(event, url)
            if text:
                yield text

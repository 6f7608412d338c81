"""``ServedRankRAGModel``: the RankRAG interface on a model served over HTTP (llama.cpp, vLLM, ...).

Prompts are rendered and truncated on the client exactly as in-process (:class:`RankingEncoder`,
:func:`prefix_cache.split_prompts`), then sent to the server's ``/v1/completions``: as token ids where the
server takes them (vLLM, llama.cpp's ``llama-server``), else as their text (llama-cpp-python's server). A
ranking request asks for one token with logprobs; P(True) is normalised like the in-process scorer
(``binary``: P(True) / (P(True) + P(False)); ``vocab``: P(True) under the whole vocabulary). Generation
uses the same endpoint, streamed with server-sent events for :meth:`stream_ids`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import numbers
import os
from collections.abc import AsyncIterator, Awaitable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, cast

from transformers import AutoTokenizer, PreTrainedTokenizerBase

from rankrag.errors import ModelNotFoundError, PromptTooLongError
from rankrag.model import loading, prefix_cache, scoring
from rankrag.model.calibration_store import read_calibration_file
from rankrag.model.generation import Generation, GenerationOptions, cut_at_stop, stop_filtered
from rankrag.model.prompts import PromptTemplates
from rankrag.model.rankrag_model import BLANK_PASSAGE_SCORE, Generator, RankRAGModel, _spread
from rankrag.model.scoring import Normalization, RankingEncoder, ScoringOptions
from rankrag.served import protocol
from rankrag.served.client import ServerClient
from rankrag.served.errors import (
    ServedModelNotFoundError,
    ServerDisconnectedError,
    ServerResponseError,
    TokenizerMismatchError,
)

logger = logging.getLogger(__name__)

Flavor = Literal["llama-cpp-python", "llama.cpp", "vllm", "openai-compatible"]
TokenizerSource = PreTrainedTokenizerBase | str | os.PathLike[str] | None

BIAS = 100.0  # logit bias that makes a token the greedy choice on any model
PROBE_QUESTION = "What is the capital of France?"
PROBE_PASSAGE = "Paris is the capital and most populous city of France."
DEFAULT_CONTEXT_WINDOW = 2048

# (path, payload builder, whether the count includes the BOS token a text prompt gets) per server kind
_TOKENIZE: dict[str, tuple[str, Any, bool]] = {
    "llama-cpp-python": ("/extras/tokenize", lambda model, text: {"input": text, "model": model}, True),
    "vllm": ("/tokenize", lambda model, text: {"model": model, "prompt": text, "add_special_tokens": False}, False),
    "llama.cpp": (
        "/tokenize",
        lambda model, text: {"content": text, "add_special": False, "parse_special": True},
        False,
    ),
}


@dataclass
class ServerInfo:
    """What :func:`connect` learned about the server."""

    base_url: str
    model: str
    flavor: Flavor
    models: tuple[str, ...]
    prompt_mode: Literal["ids", "text"]
    context_window: int | None
    context_window_source: str
    tokenizer_verified: bool
    text_adds_bos: bool = False
    raw_logprobs: bool = False
    logit_bias: bool = False
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------- tokenizer
@lru_cache(maxsize=1)
def embedded_tokenizer() -> PreTrainedTokenizerBase:
    """The embedded SmolLM2 GGUF's tokenizer, as the in-process model loads it (its materialised copy when
    one exists, which loads in milliseconds; else read from the GGUF file)."""
    directory, gguf_file = loading.resolve_source(None)
    assert gguf_file is not None
    path = Path(directory) / gguf_file
    materialized = loading.cache_dir() / "materialized" / f"{path.stem}-{loading._gguf_fingerprint(path)}"
    if (materialized / "tokenizer_config.json").is_file():
        return AutoTokenizer.from_pretrained(materialized)
    return AutoTokenizer.from_pretrained(directory, gguf_file=gguf_file)


def resolve_tokenizer(tokenizer: TokenizerSource) -> PreTrainedTokenizerBase:
    """A tokenizer object, a tokenizer directory / ``.gguf`` file / Hugging Face id, or None (embedded)."""
    if tokenizer is None:
        return embedded_tokenizer()
    if isinstance(tokenizer, PreTrainedTokenizerBase):
        return tokenizer
    if not isinstance(tokenizer, (str, os.PathLike)):
        raise TypeError(
            f"tokenizer must be a Hugging Face tokenizer, a tokenizer directory or id, a .gguf file or None; "
            f"got {type(tokenizer).__name__}"
        )
    text = os.fspath(tokenizer)
    path = Path(text).expanduser()
    try:
        if path.is_file() and path.suffix == ".gguf":
            return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        if path.is_dir() and not any((path / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json")):
            ggufs = sorted(path.glob("*.gguf"))
            if len(ggufs) == 1:
                return AutoTokenizer.from_pretrained(str(path), gguf_file=ggufs[0].name)
        return AutoTokenizer.from_pretrained(text)
    except (OSError, ValueError) as error:
        raise ModelNotFoundError(f"could not load the tokenizer {text!r}: {str(error).splitlines()[0]}") from error


def _first_difference(a: Sequence[int], b: Sequence[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


async def _all_or_cancel(awaitables: Sequence[Awaitable[float]]) -> list[float]:
    """Run concurrently; on the first failure cancel the rest and raise it (no stray requests)."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        return [task.result() for task in tasks]
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# -------------------------------------------------------------------------------- model
class ServedRankRAGModel(RankRAGModel):
    """A :class:`RankRAGModel` whose forward passes run on a model server; it holds no weights.

    Build it with :meth:`RankRAGModel.connect`. It scores, reranks, generates and streams like the in-process
    model and can be passed wherever one is (``RankRAGReranker(model=...)``, the LlamaIndex components, ...).
    ``batch_size``, ``prefix_cache`` and ``coalesce`` of :class:`ScoringOptions` do not apply: the server
    batches and caches, and at most ``max_concurrency`` requests are in flight.
    """

    def __init__(
        self,
        client: ServerClient,
        tokenizer: PreTrainedTokenizerBase,
        *,
        info: ServerInfo,
        templates: PromptTemplates | None = None,
        scoring_options: ScoringOptions | None = None,
        strict_tokens: bool = False,
        top_logprobs: int = 20,
        calibration: dict[str, Any] | None = None,
    ) -> None:
        # No RankRAGModel.__init__: there are no local weights.
        self.model = None  # type: ignore[assignment]
        self.tokenizer = tokenizer
        self.name = info.model
        self.spec = None
        self.templates = templates or PromptTemplates()
        self.scoring_options = scoring_options or ScoringOptions()
        self._answer_ids = scoring.answer_token_ids(tokenizer, self.templates)
        self.client = client
        self.info = info
        self.strict_tokens = strict_tokens
        self.top_logprobs = top_logprobs
        self.stats = {"requests": 0, "retokenized_prompts": 0, "forced_lookups": 0}
        self._warned_retokenized = False
        if calibration is not None:
            self._calibration = calibration  # else RankRAGModel.calibration looks it up by the served name

    # ------------------------------------------------------------------ basics
    def with_options(
        self,
        *,
        templates: PromptTemplates | None = None,
        scoring_options: ScoringOptions | None = None,
        generator: Generator | None = None,
    ) -> ServedRankRAGModel:
        """A handle on the same server connection with other prompts or scoring options. A server holds one set
        of weights, so ``generator="base"`` (answering without the adapter) is refused."""
        if generator == "base":
            raise ValueError(
                "a served model generates with the weights its server holds; serve the base model separately "
                "(or connect to an unmerged export) to answer without the adapter"
            )
        return type(self)(
            self.client,
            self.tokenizer,
            info=self.info,
            templates=templates or self.templates,
            scoring_options=scoring_options or self.scoring_options,
            strict_tokens=self.strict_tokens,
            top_logprobs=self.top_logprobs,
            calibration=self.calibration,
        )

    @property
    def base_url(self) -> str:
        return self.client.base_url

    @property
    def context_window(self) -> int:
        """The server's context window: reported by the server, given to connect, learned from a
        context-length error, else 2048 (llama-cpp-python's default ``--n_ctx``)."""
        return self._known_window() or DEFAULT_CONTEXT_WINDOW

    def _known_window(self) -> int | None:
        known = [w for w in (self.info.context_window, self.client.learned_context_window) if w]
        return min(known) if known else None

    @property
    def device(self) -> object:
        return f"server:{self.client.base_url}"

    def __repr__(self) -> str:
        return (
            f"ServedRankRAGModel(name={self.name!r}, url={self.client.base_url!r}, server={self.info.flavor!r}, "
            f"prompts={self.info.prompt_mode!r})"
        )

    def close(self) -> None:
        """Close the connections (every handle from :meth:`with_options` shares them)."""
        self.client.close()

    def __enter__(self) -> ServedRankRAGModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ wire format
    def _wire_prompt(self, ids: Sequence[int]) -> list[int] | str:
        """The prompt as sent: the ids themselves, or (text-only servers) their text, checked to re-tokenize
        to the same ids (``strict_tokens``: raise when it does not, else count and warn once)."""
        ids = list(ids)
        if self.info.prompt_mode == "ids":
            return ids
        bos = self.tokenizer.bos_token_id
        body = ids[1:] if self.info.text_adds_bos and ids and ids[0] == bos else ids
        text = cast(str, self.tokenizer.decode(body, clean_up_tokenization_spaces=False))
        seen = ([bos] if self.info.text_adds_bos else []) + self.tokenizer.encode(text, add_special_tokens=False)
        if seen != ids:
            self.stats["retokenized_prompts"] += 1
            at = _first_difference(ids, seen)
            detail = (
                f"the server at {self.client.base_url} takes prompts as text only, and this prompt's text "
                f"re-tokenizes differently from the token ids RankRAG builds in-process ({len(ids)} ids, "
                f"{len(seen)} after re-tokenizing, first difference at position {at}: "
                f"{self.tokenizer.convert_ids_to_tokens(ids[at : at + 2])} vs "
                f"{self.tokenizer.convert_ids_to_tokens(seen[at : at + 2])})"
            )
            if self.strict_tokens:
                raise TokenizerMismatchError(
                    f"{detail}; serve the model with vLLM or llama.cpp's llama-server (both take token ids), or "
                    f"connect with strict_tokens=False to accept the server's tokenization"
                )
            if not self._warned_retokenized:
                self._warned_retokenized = True
                logger.warning("%s; its scores can differ slightly from in-process ones (logged once)", detail)
        return text

    def _extras(self, *, sampling: bool = False) -> dict[str, Any]:
        """Server-specific fields: neutral sampling settings and token-id keys in logprobs."""
        extras: dict[str, Any] = {}
        if self.info.flavor in ("llama-cpp-python", "llama.cpp"):
            extras.update(repeat_penalty=1.0, min_p=0.0, top_k=50 if sampling else 0)
        if self.info.flavor == "vllm":
            extras["return_tokens_as_token_ids"] = True
            if sampling:
                extras["top_k"] = 50
        return extras

    # ------------------------------------------------------------------ ranking
    def _ranking_prompts(self, query: str, passages: Sequence[str], options: ScoringOptions) -> list[list[int]]:
        encoder = RankingEncoder(self.tokenizer, self.templates, options)
        return prefix_cache.split_prompts(encoder, query, passages).full()

    # Overrides RankRAGModel.score (same signature, kept): the forward passes run on the server.
    def score(
        self,
        query: str,
        passages: Sequence[str],
        *,
        batch_size: int | None = None,
        normalization: Normalization | None = None,
    ) -> list[float]:
        """P("True") for each passage, scored on the server; every passage of the query is sent concurrently."""
        items, unique, options = self._score_inputs(query, passages, batch_size, normalization)
        if not unique:  # nothing to score, or blank passages only
            return [BLANK_PASSAGE_SCORE] * len(items)
        prompts = self._ranking_prompts(query, unique, options)
        return _spread(items, unique, self.client.run(self._score_prompts(prompts, options.normalization)))

    # Kept twin of score() above, for the async paths.
    async def _ascore(
        self,
        query: str,
        passages: Sequence[str],
        *,
        batch_size: int | None = None,
        normalization: Normalization | None = None,
    ) -> list[float]:
        items, unique, options = self._score_inputs(query, passages, batch_size, normalization)
        if not unique:  # nothing to score, or blank passages only
            return [BLANK_PASSAGE_SCORE] * len(items)
        prompts = await asyncio.to_thread(self._ranking_prompts, query, unique, options)
        return _spread(items, unique, await self.client.call(self._score_prompts(prompts, options.normalization)))

    def _score_request(self, query: str, passages: Sequence[str], options: ScoringOptions) -> Any:
        raise NotImplementedError("a served model scores on its server; there is no local score request")

    async def _score_prompts(self, prompts: list[list[int]], normalization: str) -> list[float]:
        return await _all_or_cancel([self._score_one(ids, normalization) for ids in prompts])

    def _check_fits(self, ids: Sequence[int], new_tokens: int) -> None:
        window = self._known_window()
        if window and len(ids) + new_tokens > window:
            raise PromptTooLongError(
                f"the prompt has {len(ids)} tokens and {new_tokens} new token{'s' if new_tokens > 1 else ''} "
                f"{'is' if new_tokens == 1 else 'are'} asked for, over the context window of {window} tokens of "
                f"the model server at {self.client.base_url}; shorten the input or lower max_new_tokens"
            )

    def _name(self, token_id: int) -> str:
        return cast(str, self.tokenizer.decode([token_id], clean_up_tokenization_spaces=False))

    async def _complete_one_token(
        self, prompt: list[int] | str, *, logprobs: int, bias: dict[int, float] | None
    ) -> protocol.FirstToken:
        payload: dict[str, Any] = {
            "model": self.info.model,
            "prompt": prompt,
            "max_tokens": 1,
            "temperature": 0.0,
            "logprobs": logprobs,
            "stream": False,
            **self._extras(),
        }
        if bias:
            payload["logit_bias"] = {str(token): value for token, value in bias.items()}
        self.stats["requests"] += 1
        response = await self.client.request("POST", "/v1/completions", payload)
        return protocol.first_token(response, self.client.url("/v1/completions"))

    async def _score_one(self, ids: list[int], normalization: str) -> float:
        self._check_fits(ids, 1)
        prompt = self._wire_prompt(ids)
        true_id, false_id = self._answer_ids
        needed = (true_id,) if normalization == "vocab" else (true_id, false_id)
        # Equal bias on both answers keeps their ratio and puts them on top for servers whose logprobs are
        # taken after the bias; P(True) under the whole vocabulary must not be biased.
        bias = {true_id: BIAS, false_id: BIAS} if normalization == "binary" and self.info.logit_bias else None
        first = await self._complete_one_token(prompt, logprobs=self.top_logprobs, bias=bias)
        values: dict[int, float] = {}
        for token in needed:
            value = first.logprob(token, self._name(token))
            values[token] = await self._forced_logprob(prompt, token) if value is None else value
        if normalization == "vocab":
            return math.exp(values[true_id])
        if normalization != "binary":
            raise ValueError(f"unknown normalization {normalization!r}; choose one of {scoring.NORMALIZATIONS}")
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
        word = self._name(token)
        if not (self.info.raw_logprobs and self.info.logit_bias):
            raise ServerResponseError(
                f"the model server at {self.client.base_url} did not report the logprob of {word!r} (token {token}) "
                f"among its top {self.top_logprobs}, and cannot be asked for it (its logprobs "
                f"{'are taken after logit_bias' if self.info.logit_bias else 'ignore logit_bias'}); "
                f"connect with a larger top_logprobs or use normalization='binary'"
            )
        self.stats["forced_lookups"] += 1
        first = await self._complete_one_token(prompt, logprobs=1, bias={token: BIAS})
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
        self._check_fits(ids, options.max_new_tokens)
        return ids

    def _generation_payload(self, ids: list[int], options: GenerationOptions, *, stream: bool) -> dict[str, Any]:
        sampling = options.temperature > 0
        payload: dict[str, Any] = {
            "model": self.info.model,
            "prompt": self._wire_prompt(ids),
            "max_tokens": options.max_new_tokens,
            "temperature": float(options.temperature),
            "top_p": float(options.top_p) if sampling else 1.0,
            "stream": stream,
            **self._extras(sampling=sampling),
        }
        if options.stop:
            payload["stop"] = list(options.stop)
        if options.seed is not None and sampling:
            payload["seed"] = int(options.seed)
        if self.info.flavor == "vllm":
            payload.pop("return_tokens_as_token_ids", None)
        return payload

    def generate_ids(self, prompt_ids: Sequence[int], **options: object) -> Generation:
        """Generate on the server from prompt token ids. Options: max_new_tokens, temperature, top_p, stop, seed."""
        opts = self._generation_options(**options)
        ids = self._check_prompt(prompt_ids, opts)
        return self.client.run(self._agenerate(ids, opts))

    async def agenerate_ids(self, prompt_ids: Sequence[int], **options: object) -> Generation:
        """Async :meth:`generate_ids`."""
        opts = self._generation_options(**options)
        ids = self._check_prompt(prompt_ids, opts)
        return await self.client.call(self._agenerate(ids, opts))

    async def _agenerate(self, ids: list[int], options: GenerationOptions) -> Generation:
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

    def stream_ids(self, prompt_ids: Sequence[int], **options: object) -> Iterator[str]:
        """Yield text chunks as the server streams them (server-sent events); stopping early cancels the request."""
        opts = self._generation_options(**options)
        ids = self._check_prompt(prompt_ids, opts)
        return self._stream(ids, opts)

    def _stream(self, ids: list[int], options: GenerationOptions) -> Iterator[str]:
        return stop_filtered(self.client.iterate(lambda: self._astream_raw(ids, options)), options.stop)

    async def _astream_raw(self, ids: list[int], options: GenerationOptions) -> AsyncIterator[str]:
        payload = self._generation_payload(ids, options, stream=True)
        url = self.client.url("/v1/completions")
        self.stats["requests"] += 1
        async for event in self.client.stream("/v1/completions", payload):
            text, _ = protocol.chunk_text(event, url)
            if text:
                yield text


# ------------------------------------------------------------------------------ connect
async def _handshake(
    client: ServerClient,
    model: str,
    tokenizer: PreTrainedTokenizerBase,
    templates: PromptTemplates,
    options: ScoringOptions,
    *,
    context_window: int | None,
    tokenizer_given: bool,
    top_logprobs: int,
) -> ServerInfo:
    listing = await client.request("GET", "/v1/models")
    entries = listing.get("data") if isinstance(listing, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get("id"), str) for e in entries):
        raise ServerResponseError(
            f"malformed response from {client.url('/v1/models')}: expected an OpenAI model list, got {str(listing)[:200]!r}"
        )
    names = tuple(e["id"] for e in entries)
    if model not in names:
        raise ServedModelNotFoundError(
            f"the model server at {client.base_url} does not serve a model named {model!r}; it serves "
            f"{', '.join(repr(n) for n in names) or 'no model'}. Pass one of those as model= "
            f"(llama-cpp-python: --model_alias; vLLM: --served-model-name)"
        )
    owners = {str(e.get("owned_by", "")).lower() for e in entries}
    flavor: Flavor = (
        "vllm"
        if "vllm" in owners
        else "llama.cpp"
        if "llamacpp" in owners
        else "llama-cpp-python"
        if "me" in owners
        else "openai-compatible"
    )
    info = ServerInfo(
        base_url=client.base_url,
        model=model,
        flavor=flavor,
        models=names,
        prompt_mode="ids",
        context_window=None,
        context_window_source="unknown",
        tokenizer_verified=False,
    )
    entry = next(e for e in entries if e["id"] == model)
    if context_window is not None:
        info.context_window, info.context_window_source = int(context_window), "connect(context_window=...)"
    elif isinstance(entry.get("max_model_len"), int):
        info.context_window, info.context_window_source = entry["max_model_len"], "server (/v1/models max_model_len)"
    elif flavor == "llama.cpp":
        try:
            props = await client.request("GET", "/props", retry=False)
            n_ctx = props["default_generation_settings"]["n_ctx"]
            if isinstance(n_ctx, int) and n_ctx > 0:
                info.context_window, info.context_window_source = n_ctx, "server (/props n_ctx)"
        except Exception:  # noqa: BLE001 - optional metadata
            pass

    probe = RankingEncoder(tokenizer, templates, options).encode(PROBE_QUESTION, [PROBE_PASSAGE])[0]
    await _verify_tokenizer(client, info, tokenizer, probe, tokenizer_given)

    true_id, false_id = scoring.answer_token_ids(tokenizer, templates)
    model_proxy = ServedRankRAGModel(client, tokenizer, info=info, templates=templates, top_logprobs=top_logprobs)
    model_proxy._warned_retokenized = True  # the probe's own re-tokenization is not news
    try:
        plain = await model_proxy._complete_one_token(probe, logprobs=top_logprobs, bias=None)
    except ServerResponseError as error:
        rejected = error.status_code in (400, 422) or (error.status_code == 500 and "validation error" in str(error))
        if not rejected:
            raise
        info.prompt_mode = "text"
        info.notes.append("the server does not take token-id prompts; prompts are sent as text")
        plain = await model_proxy._complete_one_token(model_proxy._wire_prompt(probe), logprobs=top_logprobs, bias=None)
    if info.prompt_mode == "text" and not info.tokenizer_verified:
        raise TokenizerMismatchError(
            f"the model server at {client.base_url} takes prompts as text only and offers no tokenize endpoint, so "
            f"RankRAG cannot check that the server sees the prompts it builds; use a server that takes token ids"
        )
    wire = probe if info.prompt_mode == "ids" else model_proxy._wire_prompt(probe)
    # Bias the less likely answer token: whether the server then picks it tells whether it honours logit_bias,
    # and the logprob it reports tells whether its logprobs are taken before (raw) or after the bias.
    lt, lf = plain.logprob(true_id, model_proxy._name(true_id)), plain.logprob(false_id, model_proxy._name(false_id))
    target = false_id if lf is None or (lt is not None and lf <= lt) else true_id
    biased = await model_proxy._complete_one_token(wire, logprobs=top_logprobs, bias={target: BIAS})
    info.logit_bias = biased.sampled.matches(target, model_proxy._name(target))
    info.raw_logprobs = info.logit_bias and biased.sampled.logprob < -0.1
    if not info.logit_bias:
        info.notes.append("the server ignores logit_bias; P(True) relies on both answers being in the top logprobs")
    return info


async def _verify_tokenizer(
    client: ServerClient, info: ServerInfo, tokenizer: PreTrainedTokenizerBase, probe: list[int], given: bool
) -> None:
    """Compare the client's tokenization of a rendered ranking prompt with the server's."""
    text = tokenizer.decode(probe, clean_up_tokenization_spaces=False)
    local = tokenizer.encode(text, add_special_tokens=False)
    kinds = [info.flavor] if info.flavor in _TOKENIZE else list(_TOKENIZE)
    for kind in kinds:
        path, payload, with_bos = _TOKENIZE[kind]
        try:
            answer = await client.request("POST", path, payload(info.model, text), retry=False)
        except ServerResponseError as error:
            if error.status_code in (400, 404, 405, 422):
                continue
            raise
        tokens = answer.get("tokens") if isinstance(answer, dict) else None
        if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
            continue
        bos = tokenizer.bos_token_id
        if with_bos and bos is not None and tokens == [bos] + local:
            info.text_adds_bos = True
        elif tokens != local:
            at = _first_difference(local, tokens)
            raise TokenizerMismatchError(
                f"the tokenizer {'given' if given else '(the embedded SmolLM2 one, as tokenizer=None)'} does not "
                f"tokenize like the model {info.model!r} at {client.base_url}: on a ranking prompt they differ from "
                f"token {at} ({tokenizer.convert_ids_to_tokens(local[at : at + 3])} here, ids {tokens[at : at + 3]} "
                f"there); pass tokenizer= the served model's tokenizer (directory, Hugging Face id or .gguf file)"
            )
        info.tokenizer_verified = True
        return
    if not given and "smollm2" not in info.model.lower():
        raise TokenizerMismatchError(
            f"the model server at {client.base_url} offers no tokenize endpoint to check the tokenizer against, and "
            f"{info.model!r} does not look like the embedded SmolLM2; pass tokenizer= the served model's tokenizer"
        )
    info.notes.append("the server offers no tokenize endpoint; the tokenizer could not be checked against it")
    logger.warning("the model server at %s offers no tokenize endpoint; the tokenizer is unchecked", client.base_url)


def connect(
    base_url: str,
    *,
    model: str,
    tokenizer: TokenizerSource = None,
    api_key: str | None = None,
    timeout: float = 60.0,
    max_concurrency: int = 16,
    templates: PromptTemplates | None = None,
    scoring_options: ScoringOptions | None = None,
    context_window: int | None = None,
    strict_tokens: bool = False,
    top_logprobs: int = 20,
    max_attempts: int = 4,
    calibration: str | os.PathLike[str] | None = None,
) -> ServedRankRAGModel:
    """Connect to an OpenAI-compatible server serving ``model``; see :meth:`RankRAGModel.connect`."""
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
    templates = templates or PromptTemplates()
    options = scoring_options or ScoringOptions()
    client = ServerClient(
        base_url, api_key=api_key, timeout=timeout, max_concurrency=max_concurrency, max_attempts=max_attempts
    )
    try:
        info = client.run(
            _handshake(
                client,
                model,
                tok,
                templates,
                options,
                context_window=context_window,
                tokenizer_given=tokenizer is not None,
                top_logprobs=top_logprobs,
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
    return ServedRankRAGModel(
        client,
        tok,
        info=info,
        templates=templates,
        scoring_options=options,
        strict_tokens=strict_tokens,
        top_logprobs=top_logprobs,
        calibration=stored,
    )

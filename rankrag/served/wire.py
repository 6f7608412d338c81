"""What goes over the wire to a model server: prompts as ids or text, neutral sampling fields, one-token probes.

:class:`ServerWire` is shared by the connect handshake (which learns :class:`ServerInfo` with it) and by
:class:`~rankrag.served.http_backend.HTTPBackend` (which scores and generates with it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from transformers import PreTrainedTokenizerBase

from rankrag.errors import PromptTooLongError
from rankrag.model.roles import Role
from rankrag.served import protocol
from rankrag.served.client import ServerClient
from rankrag.served.errors import TokenizerMismatchError

logger = logging.getLogger(__name__)

Flavor = Literal["llama-cpp-python", "llama.cpp", "vllm", "openai-compatible"]

BIAS = 100.0  # logit bias that makes a token the greedy choice on any model
DEFAULT_CONTEXT_WINDOW = 2048


@dataclass
class ServerInfo:
    """What :func:`rankrag.served.handshake.handshake` learned about the server."""

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
    role_models: dict[str, str] = field(default_factory=dict)
    """The served model each role's requests name (see :func:`rankrag.served.handshake.role_models`)."""

    def model_for(self, role: Role) -> str:
        return self.role_models.get(role, self.model)


def first_difference(a: Sequence[int], b: Sequence[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


class ServerWire:
    """Request building for one server connection. ``stats`` counts requests, prompts a text-only server
    re-tokenized differently, and forced logprob lookups."""

    def __init__(
        self,
        client: ServerClient,
        tokenizer: PreTrainedTokenizerBase,
        info: ServerInfo,
        *,
        strict_tokens: bool = False,
        warn_retokenized: bool = True,
    ) -> None:
        self.client = client
        self.tokenizer = tokenizer
        self.info = info
        self.strict_tokens = strict_tokens
        self.stats = {"requests": 0, "retokenized_prompts": 0, "forced_lookups": 0}
        self._warned_retokenized = not warn_retokenized

    def token_name(self, token_id: int) -> str:
        return cast(str, self.tokenizer.decode([token_id], clean_up_tokenization_spaces=False))

    def known_window(self) -> int | None:
        known = [w for w in (self.info.context_window, self.client.learned_context_window) if w]
        return min(known) if known else None

    def check_fits(self, ids: Sequence[int], new_tokens: int) -> None:
        window = self.known_window()
        if window and len(ids) + new_tokens > window:
            raise PromptTooLongError(
                f"the prompt has {len(ids)} tokens and {new_tokens} new token{'s' if new_tokens > 1 else ''} "
                f"{'is' if new_tokens == 1 else 'are'} asked for, over the context window of {window} tokens of "
                f"the model server at {self.client.base_url}; shorten the input or lower max_new_tokens"
            )

    def prompt(self, ids: Sequence[int]) -> list[int] | str:
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
            at = first_difference(ids, seen)
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

    def extras(self, *, sampling: bool = False) -> dict[str, Any]:
        """Server-specific fields: neutral sampling settings and token-id keys in logprobs."""
        extras: dict[str, Any] = {}
        if self.info.flavor in ("llama-cpp-python", "llama.cpp"):
            extras.update(repeat_penalty=1.0, min_p=0.0, top_k=50 if sampling else 0)
        if self.info.flavor == "vllm":
            extras["return_tokens_as_token_ids"] = True
            if sampling:
                extras["top_k"] = 50
        return extras

    async def complete_one_token(
        self, prompt: list[int] | str, *, logprobs: int, bias: dict[int, float] | None
    ) -> protocol.FirstToken:
        """One greedy token with its top ``logprobs``, optionally under a logit bias."""
        payload: dict[str, Any] = {
            "model": self.info.model_for("ranker"),
            "prompt": prompt,
            "max_tokens": 1,
            "temperature": 0.0,
            "logprobs": logprobs,
            "stream": False,
            **self.extras(),
        }
        if bias:
            payload["logit_bias"] = {str(token): value for token, value in bias.items()}
        self.stats["requests"] += 1
        response = await self.client.request("POST", "/v1/completions", payload)
        return protocol.first_token(response, self.client.url("/v1/completions"))

"""Reading OpenAI-style completion responses: the first generated token's logprobs, text, usage.

Two logprob layouts exist. The legacy completions one (llama-cpp-python, vLLM, OpenAI)::

    "logprobs": {"tokens": ["True"], "token_logprobs": [-0.4], "top_logprobs": [{"True": -0.4, "False": -1.2}]}

keys tokens by their text (vLLM by ``"token_id:123"`` with ``return_tokens_as_token_ids``), and the
chat-style one (llama.cpp's llama-server)::

    "logprobs": {"content": [{"id": 123, "token": "True", "logprob": -0.4, "top_logprobs": [{"id": ..., ...}]}]}
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rankrag.served.errors import ServerResponseError


@dataclass(frozen=True)
class TokenLogprob:
    token_id: int | None
    text: str | None
    logprob: float

    def matches(self, token_id: int, text: str) -> bool:
        return self.token_id == token_id if self.token_id is not None else self.text == text


@dataclass(frozen=True)
class FirstToken:
    """The distribution the server reported at the last prompt position."""

    sampled: TokenLogprob
    top: tuple[TokenLogprob, ...]

    def logprob(self, token_id: int, text: str) -> float | None:
        """The logprob of the token, or None when the server did not report it."""
        for entry in (*self.top, self.sampled):
            if entry.matches(token_id, text):
                return entry.logprob
        return None


def _number(value: Any, url: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value > 1e-6:
        raise ServerResponseError(f"malformed response from {url}: {what} is {value!r}, not a logprob")
    return float(min(value, 0.0))


def _key(key: Any, url: str) -> tuple[int | None, str]:
    if not isinstance(key, str):
        raise ServerResponseError(f"malformed response from {url}: a top_logprobs key is {key!r}")
    if key.startswith("token_id:") and key[len("token_id:") :].isdigit():
        return int(key[len("token_id:") :]), key
    return None, key


def first_choice(response: Any, url: str) -> dict[str, Any]:
    choices = response.get("choices") if isinstance(response, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ServerResponseError(
            f"malformed response from {url}: no 'choices' (got {str(response)[:200]!r}); the response may be truncated"
        )
    return choices[0]


def first_token(response: Any, url: str) -> FirstToken:
    """The first generated token's logprobs; raises :class:`ServerResponseError` when there are none."""
    choice = first_choice(response, url)
    logprobs = choice.get("logprobs")
    if not logprobs:
        raise ServerResponseError(
            f"the model server at {url} returned no logprobs; RankRAG scoring reads P(True) from them. "
            f"llama-cpp-python needs logits_all (its default); vLLM returns them unless --max-logprobs is 0"
        )
    if not isinstance(logprobs, dict):
        raise ServerResponseError(f"malformed response from {url}: logprobs is {str(logprobs)[:200]!r}")
    if "content" in logprobs:  # chat-style layout (llama-server)
        content = logprobs["content"]
        if not isinstance(content, list) or not content or not isinstance(content[0], dict):
            raise ServerResponseError(f"the model server at {url} returned empty logprobs: {str(logprobs)[:200]!r}")
        entry = content[0]

        def read(item: dict[str, Any]) -> TokenLogprob:
            token_id = item.get("id")
            text = item.get("token")
            if token_id is None and isinstance(text, str):
                token_id, _ = _key(text, url)
            return TokenLogprob(
                token_id if isinstance(token_id, int) and not isinstance(token_id, bool) else None,
                text if isinstance(text, str) else None,
                _number(item.get("logprob"), url, "a logprob"),
            )

        tops = entry.get("top_logprobs") or []
        if not isinstance(tops, list) or not all(isinstance(item, dict) for item in tops):
            raise ServerResponseError(f"malformed response from {url}: top_logprobs is {str(tops)[:200]!r}")
        return FirstToken(sampled=read(entry), top=tuple(read(item) for item in tops))
    tokens, values, tops = logprobs.get("tokens"), logprobs.get("token_logprobs"), logprobs.get("top_logprobs")
    if not isinstance(tokens, list) or not isinstance(values, list) or not tokens or not values:
        raise ServerResponseError(f"the model server at {url} returned empty logprobs: {str(logprobs)[:200]!r}")
    sampled_id, sampled_text = _key(tokens[0], url)
    sampled = TokenLogprob(sampled_id, sampled_text, _number(values[0], url, "the sampled token's logprob"))
    table = tops[0] if isinstance(tops, list) and tops else {}
    if table is None:
        table = {}
    if not isinstance(table, dict):
        raise ServerResponseError(f"malformed response from {url}: top_logprobs is {str(tops)[:200]!r}")
    top = []
    for key, value in table.items():
        token_id, text = _key(key, url)
        top.append(TokenLogprob(token_id, text, _number(value, url, f"the logprob of {key!r}")))
    return FirstToken(sampled=sampled, top=tuple(top))


def completion_text(response: Any, url: str) -> tuple[str, str | None]:
    """The generated text and finish reason of a non-streamed completion."""
    choice = first_choice(response, url)
    text = choice.get("text")
    if not isinstance(text, str):
        raise ServerResponseError(f"malformed response from {url}: the completion has no text ({str(choice)[:200]!r})")
    reason = choice.get("finish_reason")
    return text, reason if isinstance(reason, str) else None


def usage(response: Any) -> tuple[int | None, int | None]:
    data = response.get("usage") if isinstance(response, dict) else None
    if not isinstance(data, dict):
        return None, None
    prompt, completion = data.get("prompt_tokens"), data.get("completion_tokens")
    return (prompt if isinstance(prompt, int) else None, completion if isinstance(completion, int) else None)


def chunk_text(event: dict[str, Any], url: str) -> tuple[str, str | None]:
    """The text delta and finish reason of one streamed completion event."""
    choices = event.get("choices")
    if not isinstance(choices, list):
        raise ServerResponseError(f"malformed event in the stream from {url}: {str(event)[:200]!r}")
    if not choices:
        return "", None  # e.g. a final usage-only event
    choice = choices[0]
    text = choice.get("text", "") if isinstance(choice, dict) else None
    if not isinstance(text, str):
        raise ServerResponseError(f"malformed event in the stream from {url}: {str(event)[:200]!r}")
    reason = choice.get("finish_reason")
    return text, reason if isinstance(reason, str) else None

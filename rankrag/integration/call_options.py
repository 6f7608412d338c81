"""An LLM component's settings and per-call options, as one :class:`GenerationOptions`.

Both frameworks' ``RankRAGLLM`` take the same per-call options over their settings: ``max_tokens`` (or
``max_new_tokens``, which wins when both are given), ``temperature``, ``top_p``, ``stop`` (one string is one
stop sequence) and ``seed``. A None value keeps the setting. ``model`` may only name the loaded model.
Anything else (tools, structured output, ...) is an :class:`UnsupportedCallOptionError`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import Any

from rankrag.model.generation import GenerationOptions

CALL_OPTIONS = ("max_tokens", "max_new_tokens", "temperature", "top_p", "stop", "seed")


class UnsupportedCallOptionError(TypeError, ValueError):
    """A per-call option no RankRAGLLM takes: a TypeError like any unknown keyword, and a ValueError as
    LangChain chat models report unsupported options."""


def generation_options(
    settings: GenerationOptions, call: Mapping[str, Any], *, loaded: str, aliases: Collection[str | None] = ()
) -> GenerationOptions:
    """``settings`` overridden by the per-call options in ``call``. ``loaded`` is the loaded model's name;
    ``call["model"]`` may be it or one of ``aliases``."""
    requested = call.get("model")
    if requested is not None and requested != loaded and requested not in aliases:
        raise ValueError(
            f"RankRAGLLM serves the loaded model {loaded!r} and cannot switch to {requested!r} per call; "
            "build another RankRAGLLM(model_name=...) for it"
        )
    unknown = sorted(set(call) - {"model", *CALL_OPTIONS})
    if unknown:
        raise UnsupportedCallOptionError(
            f"RankRAGLLM does not support the call options {unknown}: unsupported generation options "
            f"(it takes {', '.join(CALL_OPTIONS)}; it has no tools or structured output)"
        )
    given = {name: value for name, value in call.items() if name != "model" and value is not None}
    if "max_tokens" in given:
        given.setdefault("max_new_tokens", given.pop("max_tokens"))
    if "stop" in given:
        stop = given["stop"]
        given["stop"] = (stop,) if isinstance(stop, str) else tuple(stop)
    return replace(settings, **given)

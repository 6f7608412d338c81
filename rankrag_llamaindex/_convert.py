"""Translations between LlamaIndex types and the rankrag core. No ranking or generation logic lives here."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, ChatResponse, CompletionResponse, MessageRole
from llama_index.core.schema import MetadataMode, NodeWithScore

from rankrag import Generation, RankRAGModel, adapter_support

RETRIEVAL_SCORE_KEY = "retrieval_score"
LLM_SCORE_KEY = "llm_score"
_SCORE_KEYS = [RETRIEVAL_SCORE_KEY, LLM_SCORE_KEY]

GENERATION_OPTION_NAMES = ("max_new_tokens", "temperature", "top_p", "stop", "seed")


def load_options(
    source: str | os.PathLike[str] | None = None,
    quantization: str | None = None,
    adapter: str | os.PathLike[str] | None = "default",
    dtype: str | None = None,
    device: str | None = None,
    trust_remote_code: bool = False,
    model_name: str | None = None,
) -> dict[str, Any]:
    """The :func:`rankrag.model.resolve.resolve_model` arguments a caller actually set (None / "default" /
    False mean "not set"); ``model_name`` is another spelling of ``source``, as in the LangChain components."""
    named = {"source": source, "model_name": model_name, "quantization": quantization, "dtype": dtype, "device": device}
    options: dict[str, Any] = {key: value for key, value in named.items() if value is not None}
    if adapter != "default":
        options["adapter"] = adapter
    if trust_remote_code:
        options["trust_remote_code"] = True
    return options


def resolve_model(model: RankRAGModel | str | os.PathLike[str] | None, options: dict[str, Any]) -> RankRAGModel:
    """The shared RankRAGModel (see :func:`rankrag.model.resolve.resolve_model`)."""
    from rankrag.model.resolve import resolve_model as resolve

    return resolve(model, **options)


LOAD_KEY = "rankrag_load"


def load_spec(model: RankRAGModel) -> dict[str, Any]:
    """The :meth:`RankRAGModel.load` arguments that rebuild ``model`` (what ``to_dict`` stores)."""
    spec = model.spec
    if spec is None:
        raise ValueError(
            f"{model!r} was not loaded from a name (a served model, or a (model, tokenizer) pair), so it cannot "
            f"be serialized; rebuild the component with the same model object instead"
        )
    return {
        "source": os.path.join(spec.source, spec.gguf_file) if spec.gguf_file else spec.source,
        "adapter": spec.adapter,
        "dtype": spec.dtype,
        "quantization": spec.quantization,
        "device": spec.device,
        "trust_remote_code": spec.trust_remote_code,
    }


def from_serialized(data: dict[str, Any]) -> dict[str, Any]:
    """Constructor keywords from a ``to_dict`` result: the stored load arguments, not the display name."""
    data = dict(data)
    data.pop("class_name", None)
    data.pop("model_name", None)
    load = data.pop(LOAD_KEY, None)
    if not isinstance(load, dict):
        raise ValueError(f"this dict has no {LOAD_KEY!r} entry; it was not written by a RankRAG component's to_dict")
    return {**load, **data}


# ----------------------------------------------------------------------------------------- nodes
def node_text(node: NodeWithScore, metadata_mode: MetadataMode) -> str:
    return node.node.get_content(metadata_mode=metadata_mode)


def passage_text(node: NodeWithScore, metadata_mode: MetadataMode) -> str:
    """What the model reads for a node: its text with the ``metadata_mode`` metadata, or "" when the node's
    own text is blank (metadata alone is no passage), so that the blank-passage rule leaves it out."""
    if adapter_support.is_blank(node.node.get_content(metadata_mode=MetadataMode.NONE)):
        return ""
    return node_text(node, metadata_mode)


def first_stage_scores(nodes: Sequence[NodeWithScore]) -> list[float | None]:
    """The retrieval score of each node (None where it has none); the core falls back on the retrieval order
    unless every non-blank node has one."""
    return [None if node.score is None else float(node.score) for node in nodes]


def scored_node(original: NodeWithScore, score: float, llm_score: float) -> NodeWithScore:
    """A copy of ``original`` scored by RankRAG; the input node is left untouched.

    The retrieval score and the LLM score go into the copy's metadata, hidden from the text that
    LlamaIndex embeds or sends to the answering LLM.
    """
    inner = original.node
    metadata = {**inner.metadata, RETRIEVAL_SCORE_KEY: original.score, LLM_SCORE_KEY: llm_score}
    copy = inner.model_copy(
        update={
            "metadata": metadata,
            "excluded_llm_metadata_keys": _with_keys(inner.excluded_llm_metadata_keys),
            "excluded_embed_metadata_keys": _with_keys(inner.excluded_embed_metadata_keys),
        }
    )
    return NodeWithScore(node=copy, score=score)


def _with_keys(keys: list[str]) -> list[str]:
    return [*keys, *(key for key in _SCORE_KEYS if key not in keys)]


# ------------------------------------------------------------------------------------------- llm
def chat_messages_to_dicts(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    """LlamaIndex chat messages as the role/content dicts of the model's chat template. No messages, or none
    with text besides a system prompt, is :data:`rankrag.adapter_support.EMPTY_PROMPT_MESSAGE`'s ValueError."""
    converted = []
    for index, message in enumerate(messages):
        if not isinstance(message, ChatMessage):
            raise TypeError(f"messages[{index}] must be a ChatMessage, got {type(message).__name__}")
        role = message.role.value if isinstance(message.role, MessageRole) else str(message.role)
        converted.append({"role": role, "content": message.content or ""})
    return adapter_support.check_conversation(converted)


def completion_messages(prompt: str, system_prompt: str | None) -> list[dict[str, str]]:
    """A plain completion prompt as one user turn (after the LLM's system prompt, if any); a blank prompt is
    :data:`rankrag.adapter_support.EMPTY_PROMPT_MESSAGE`'s ValueError."""
    adapter_support.check_prompt(prompt)
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return [*system, {"role": "user", "content": prompt}]


def generation_options(defaults: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Per-call generation options over the LLM's defaults; ``max_tokens`` is accepted for max_new_tokens."""
    overrides = dict(overrides)
    if "max_tokens" in overrides:
        overrides.setdefault("max_new_tokens", overrides.pop("max_tokens"))
    unknown = sorted(set(overrides) - set(GENERATION_OPTION_NAMES))
    if unknown:
        raise TypeError(f"unsupported generation options {unknown}; supported: {list(GENERATION_OPTION_NAMES)}")
    options = {**defaults, **{key: value for key, value in overrides.items() if value is not None}}
    options["stop"] = list(options.get("stop") or [])
    return options


def completion_response(generation: Generation) -> CompletionResponse:
    usage = {
        "prompt_tokens": generation.prompt_tokens,
        "completion_tokens": generation.completion_tokens,
        "total_tokens": generation.prompt_tokens + generation.completion_tokens,
        "finish_reason": generation.finish_reason,
    }
    return CompletionResponse(text=generation.text, raw=usage, additional_kwargs=usage)


def chat_response(completion: CompletionResponse) -> ChatResponse:
    return ChatResponse(
        message=ChatMessage(role=MessageRole.ASSISTANT, content=completion.text),
        delta=completion.delta,
        raw=completion.raw,
        additional_kwargs=completion.additional_kwargs,
    )

"""Translations between LlamaIndex types and the rankrag core. No ranking or generation logic lives here."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from llama_index.core.base.llms.types import (
    CachePoint,
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    MessageRole,
    TextBlock,
    ThinkingBlock,
)
from llama_index.core.schema import MetadataMode, NodeWithScore

from rankrag import Generation, RankRAGModel
from rankrag.integration import messages
from rankrag.integration.metadata import SCORE_KEYS, score_metadata
from rankrag.integration.ranking import RerankRequest
from rankrag.model.passages import is_blank
from rankrag.model.results import ScoredPassage

LOAD_KEY = "rankrag_load"


def load_spec(model: RankRAGModel) -> dict[str, Any]:
    """The :meth:`RankRAGModel.load` arguments that rebuild ``model`` (what ``to_dict`` stores)."""
    spec = model.spec  # the backend's: None for a served model or a (model, tokenizer) pair
    if spec is None:
        raise ValueError(
            f"{model!r} was not loaded from a name (a served model, or a (model, tokenizer) pair), so it cannot "
            f"be serialized; rebuild the component with the same model object instead"
        )
    return {
        "source": os.path.join(spec.source, spec.gguf_file) if spec.gguf_file else spec.source,
        "adapter": spec.ranker_adapter,
        "answerer_adapter": spec.answerer_adapter,
        "dtype": spec.dtype,
        "quantization": spec.quantization,
        "device": spec.device,
        "trust_remote_code": spec.trust_remote_code,
        **({"embedding_model": model.embedding_model} if isinstance(model.embedding_model, str | None) else {}),
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
def passage_text(node: NodeWithScore, metadata_mode: MetadataMode) -> str:
    """What the model reads for a node: its text with the ``metadata_mode`` metadata, or "" when the node's
    own text is blank (metadata alone is no passage), so that the blank-passage rule leaves it out."""
    if is_blank(node.node.get_content(metadata_mode=MetadataMode.NONE)):
        return ""
    return node.node.get_content(metadata_mode=metadata_mode)


def rerank_request(query: str, nodes: Sequence[NodeWithScore], metadata_mode: MetadataMode) -> RerankRequest:
    """One text per node, and the nodes' retrieval scores (None where a node has none)."""
    texts = [passage_text(node, metadata_mode) for node in nodes]
    return RerankRequest(query, texts, [None if node.score is None else float(node.score) for node in nodes])


def scored_node(original: NodeWithScore, scored: ScoredPassage) -> NodeWithScore:
    """A copy of ``original`` scored by RankRAG; the input node is left untouched.

    The scores of :mod:`rankrag.integration.metadata` go into the copy's metadata, hidden from the text that
    LlamaIndex embeds or sends to the answering LLM.
    """
    inner = original.node
    retrieval_score = None if original.score is None else float(original.score)
    copy = inner.model_copy(
        update={
            "metadata": {**inner.metadata, **score_metadata(scored, retrieval_score)},
            "excluded_llm_metadata_keys": _with_keys(inner.excluded_llm_metadata_keys),
            "excluded_embed_metadata_keys": _with_keys(inner.excluded_embed_metadata_keys),
        }
    )
    return NodeWithScore(node=copy, score=scored.score)


def _with_keys(keys: list[str]) -> list[str]:
    return [*keys, *(key for key in SCORE_KEYS if key not in keys)]


# ------------------------------------------------------------------------------------------- llm
def _message_text(message: ChatMessage, role: str) -> str:
    """The text blocks of a message; the model reads text only, so other content blocks are an error."""
    for block in message.blocks:
        if not isinstance(block, (TextBlock, ThinkingBlock, CachePoint)):
            raise messages.text_only_error(role, getattr(block, "block_type", type(block).__name__))
    return message.content or ""


def chat_messages_to_dicts(chat: Sequence[ChatMessage]) -> list[dict[str, str]]:
    """LlamaIndex chat messages as the role/content dicts of the chat template, under
    :mod:`rankrag.integration.messages`' policy."""
    turns = []
    for index, message in enumerate(chat):
        if not isinstance(message, ChatMessage):
            raise TypeError(f"messages[{index}] must be a ChatMessage, got {type(message).__name__}")
        role = message.role.value if isinstance(message.role, MessageRole) else str(message.role)
        turns.append((role, _message_text(message, role)))
    return messages.conversation(turns)


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

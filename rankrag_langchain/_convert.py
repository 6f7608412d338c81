"""Translations between LangChain types and the core's plain types (strings, role dicts, ScoredPassage)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from langchain_core.documents import Document
from langchain_core.messages import BaseMessage, ChatMessage
from langchain_core.messages.ai import UsageMetadata

from rankrag import adapter_support
from rankrag.model.results import ScoredPassage
from rankrag.model.validation import check_query

FIRST_STAGE_SCORE_KEYS = ("score", "relevance_score", "similarity_score")
"""Metadata keys read as the retriever's score (higher is better) when a reranker is not told one."""

QUESTION_KEYS = ("question", "query", "input")
"""Keys a dict input may carry the question under (the chain's and the reranker's Runnable input)."""

_ROLES = {"system": "system", "human": "user", "ai": "assistant", "tool": "tool", "function": "tool"}


# ------------------------------------------------------------------------------------------ messages
def message_text(message: BaseMessage) -> str:
    """The text of a message; the model reads text only, so other content blocks are an error."""
    if isinstance(message.content, str):
        return message.content
    parts: list[str] = []
    for block in message.content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        elif isinstance(block, dict) and block.get("type") in ("reasoning", "thinking"):
            continue  # a model's own reasoning trace is not part of the conversation
        else:
            kind = block.get("type", "unknown") if isinstance(block, dict) else type(block).__name__
            raise ValueError(f"RankRAGLLM reads text only; a {message.type} message holds a {kind!r} content block")
    return "".join(parts)


def message_role(message: BaseMessage) -> str:
    if isinstance(message, ChatMessage):
        return message.role
    try:
        return _ROLES[message.type]
    except KeyError:
        raise ValueError(f"RankRAGLLM cannot read a message of type {message.type!r}") from None


def messages_to_dicts(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    """Role/content dicts for the chat template; consecutive turns of one role are merged into one,
    because many chat templates require roles to alternate. No messages, or none with text besides a
    system prompt, is :data:`rankrag.adapter_support.EMPTY_PROMPT_MESSAGE`'s ValueError."""
    turns: list[dict[str, str]] = []
    for message in messages:
        role, text = message_role(message), message_text(message)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] += "\n\n" + text
        else:
            turns.append({"role": role, "content": text})
    return adapter_support.check_conversation(turns)


def question_of(value: Any, name: str = "question") -> str:
    """The question from a string or from a dict's "question", "query" or "input" entry."""
    if isinstance(value, dict):
        key = next((k for k in QUESTION_KEYS if k in value), None)
        if key is None:
            raise ValueError(f"the input dict needs one of the keys {QUESTION_KEYS}, got {sorted(value)}")
        value = value[key]
    return check_query(value, name)


def usage_metadata(input_tokens: int, output_tokens: int) -> UsageMetadata:
    return UsageMetadata(  # type: ignore[typeddict-item]
        input_tokens=input_tokens, output_tokens=output_tokens, total_tokens=input_tokens + output_tokens
    )


# ----------------------------------------------------------------------------------------- documents
def check_documents(documents: Any) -> list[Document]:
    """The documents as a list, with a clear error for anything that is not a LangChain Document."""
    if isinstance(documents, (str, Document)):
        raise TypeError("documents must be a list of langchain_core Documents, not a single item")
    items = list(documents)
    for index, document in enumerate(items):
        if not isinstance(document, Document):
            raise TypeError(f"documents[{index}] must be a langchain_core Document, got {type(document).__name__}")
    return items


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def first_stage_scores(documents: Sequence[Document], key: str | None) -> list[float] | None:
    """The retriever's scores from document metadata, or None to fall back on the retrieval order.

    With ``key`` given every document must carry a number under it. Without one, the first of
    :data:`FIRST_STAGE_SCORE_KEYS` that every document carries as a number is used, if any.
    """
    metadatas = [document.metadata or {} for document in documents]
    if key is not None:
        for index, metadata in enumerate(metadatas):
            if not _is_number(metadata.get(key)):
                raise ValueError(f"documents[{index}].metadata[{key!r}] must be a finite number (the retrieval score)")
        return [float(metadata[key]) for metadata in metadatas]
    for candidate in FIRST_STAGE_SCORE_KEYS:
        if all(_is_number(metadata.get(candidate)) for metadata in metadatas):
            return [float(metadata[candidate]) for metadata in metadatas]
    return None


def scored_document(document: Document, scored: ScoredPassage) -> Document:
    """A copy of ``document`` whose metadata adds the RankRAG scores; the input is left untouched."""
    metadata = dict(document.metadata or {})
    metadata.update(
        relevance_score=scored.score,
        llm_score=scored.metadata.get("llm_score", scored.score),
        retrieval_rank=scored.index,
    )
    return Document(page_content=document.page_content or "", metadata=metadata, id=document.id)

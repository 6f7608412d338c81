"""Translations between LangChain types and the core's plain types (strings, role/text turns, ScoredPassage)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.documents import Document
from langchain_core.messages import BaseMessage, ChatMessage
from langchain_core.messages.ai import UsageMetadata

from rankrag.integration import messages
from rankrag.integration.metadata import retrieval_scores, score_metadata
from rankrag.integration.ranking import RerankRequest
from rankrag.model.results import ScoredPassage
from rankrag.model.validation import check_query

QUESTION_KEYS = ("question", "query", "input")
"""Keys a dict input may carry the question under (the chain's and the reranker's Runnable input)."""

_MESSAGE_TYPES = ("system", "human", "ai", "tool", "function")
"""The message types read as a role (see :data:`rankrag.integration.messages.ROLE_ALIASES`)."""


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
            raise messages.text_only_error(message.type, kind)
    return "".join(parts)


def message_role(message: BaseMessage) -> str:
    if isinstance(message, ChatMessage):
        return message.role
    if message.type not in _MESSAGE_TYPES:
        raise ValueError(f"RankRAGLLM cannot read a message of type {message.type!r}")
    return message.type


def messages_to_dicts(chat: Sequence[BaseMessage]) -> list[dict[str, str]]:
    """Role/content dicts for the chat template, under :mod:`rankrag.integration.messages`' policy."""
    return messages.conversation((message_role(message), message_text(message)) for message in chat)


def question_of(value: Any, name: str = "question") -> str:
    """The question from a string or from a dict's "question", "query" or "input" entry."""
    if isinstance(value, dict):
        key = next((k for k in QUESTION_KEYS if k in value), None)
        if key is None:
            raise ValueError(f"the input dict needs one of the keys {QUESTION_KEYS}, got {sorted(value)}")
        value = value[key]
    return check_query(value, name)


def usage_metadata(input_tokens: int, output_tokens: int) -> UsageMetadata:
    return UsageMetadata(  # type: ignore[typeddict-item]  # langchain-core marks the token details keys required in some versions
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


def rerank_request(query: str, documents: Sequence[Document], score_key: str | None) -> RerankRequest:
    """The documents' texts, and the retriever's scores from their metadata (see
    :func:`rankrag.integration.metadata.retrieval_scores`)."""
    texts = [document.page_content or "" for document in documents]
    metadatas = [document.metadata or {} for document in documents]
    return RerankRequest(query, texts, retrieval_scores(texts, metadatas, score_key))


def scored_document(document: Document, scored: ScoredPassage, retrieval_score: float | None) -> Document:
    """A copy of ``document`` whose metadata adds the RankRAG scores; the input is left untouched."""
    metadata = {**(document.metadata or {}), **score_metadata(scored, retrieval_score)}
    return Document(page_content=document.page_content or "", metadata=metadata, id=document.id)

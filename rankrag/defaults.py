"""Defaults shared by every entry point (core, command line, LangChain, LlamaIndex); importing this is free."""

from __future__ import annotations

DEFAULT_MAX_NEW_TOKENS = 128
"""Longest answer, in tokens, wherever generation has no explicit limit (RankRAG answers stop far earlier)."""

NOT_FOUND_MESSAGE = "I could not find the answer in the documents."
"""What the RAG pipelines answer, without calling the generator, when no passage reaches the relevance threshold."""

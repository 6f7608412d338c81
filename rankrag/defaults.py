"""Defaults shared by every entry point (core, command line, LangChain, LlamaIndex); importing this is free."""

from __future__ import annotations

DEFAULT_MAX_NEW_TOKENS = 128
"""Longest answer, in tokens, wherever generation has no explicit limit (RankRAG answers stop far earlier)."""

"""LangChain is an optional extra: without it, importing the adapter says how to install it."""

from __future__ import annotations

import importlib
import sys

import pytest


def test_missing_langchain_gives_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in sys.modules if n == "rankrag_langchain" or n.startswith("rankrag_langchain.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "langchain_core", None)  # makes `import langchain_core` fail
    with pytest.raises(ImportError, match=r'pip install "rankrag\[langchain\]"'):
        importlib.import_module("rankrag_langchain")


def test_public_names() -> None:
    import rankrag_langchain

    assert set(rankrag_langchain.__all__) == {
        "RankRAGCrossEncoder",
        "RankRAGLLM",
        "RankRAGReranker",
        "create_rankrag_chain",
        "embedded_embeddings",
    }

"""LlamaIndex components on one shared RankRAG model: a node reranker and an LLM.

>>> from rankrag_llamaindex import RankRAGLLM, RankRAGReranker
>>> engine = index.as_query_engine(
...     llm=RankRAGLLM(), node_postprocessors=[RankRAGReranker(top_n=5)], similarity_top_k=20
... )
"""

from __future__ import annotations

try:
    import llama_index.core  # noqa: F401
except ImportError as error:
    from rankrag.errors import MissingDependencyError

    raise MissingDependencyError(
        'rankrag_llamaindex needs LlamaIndex; install it with: pip install "rankrag[llamaindex]"'
    ) from error

from rankrag_llamaindex.llm import RankRAGLLM
from rankrag_llamaindex.reranker import RankRAGReranker

__all__ = ["RankRAGLLM", "RankRAGReranker"]

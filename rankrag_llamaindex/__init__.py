"""LlamaIndex components on one shared RankRAG model: a node reranker and an LLM; and the embedded MiniLM
embeddings for the index.

>>> from rankrag_llamaindex import RankRAGLLM, RankRAGReranker, embedded_embed_model
>>> index = VectorStoreIndex.from_documents(documents, embed_model=embedded_embed_model())  # local all-MiniLM-L6-v2
>>> engine = index.as_query_engine(
...     llm=RankRAGLLM(), node_postprocessors=[RankRAGReranker(top_n=5)], similarity_top_k=20
... )

``create_rankrag_query_engine(index_or_retriever, top_k=5, score_threshold=0.5)`` builds that engine and answers
"not found" (without calling the LLM) when no node reaches the threshold.

The components only translate LlamaIndex types; what they do is :mod:`rankrag.integration`'s, shared with
``rankrag_langchain``: blank nodes (empty or whitespace-only text) never take a top-n slot and never reach the
LLM, an empty prompt is a ValueError, and the same scores go into node metadata.
"""

from __future__ import annotations

try:
    import llama_index.core  # noqa: F401
except ImportError as error:
    from rankrag.errors import MissingDependencyError

    raise MissingDependencyError(
        'rankrag_llamaindex needs LlamaIndex; install it with: pip install "rankrag[llamaindex]"'
    ) from error

from rankrag_llamaindex.embeddings import embedded_embed_model
from rankrag_llamaindex.llm import RankRAGLLM
from rankrag_llamaindex.query_engine import RankRAGQueryEngine, create_rankrag_query_engine
from rankrag_llamaindex.reranker import RankRAGReranker

__all__ = ["RankRAGLLM", "RankRAGQueryEngine", "RankRAGReranker", "create_rankrag_query_engine", "embedded_embed_model"]

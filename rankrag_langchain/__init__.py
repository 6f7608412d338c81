"""LangChain adapters for RankRAG: a reranker, a cross encoder, a chat model and a one-call RAG chain on
ONE shared model, and the embedded MiniLM embeddings for the vector store.

>>> from rankrag_langchain import RankRAGCrossEncoder, RankRAGReranker, RankRAGLLM, create_rankrag_chain
>>> from rankrag_langchain import embedded_embeddings
>>> vectorstore = InMemoryVectorStore.from_documents(documents, embedded_embeddings())  # local all-MiniLM-L6-v2
>>> retriever = vectorstore.as_retriever(search_kwargs={"k": 20})
>>> reranker = RankRAGReranker(top_n=5)          # loads the embedded model once ...
>>> llm = RankRAGLLM(model=reranker.model)       # ... and the chat model reuses it
>>> chain = create_rankrag_chain(retriever, reranker=reranker, llm=llm)
>>> chain.invoke("Who wrote ...?")               # {"answer": ..., "source_documents": [...]}
>>> ({"query": RunnablePassthrough(), "documents": retriever} | reranker).invoke("Who wrote ...?")  # rerank only
>>> CrossEncoderReranker(model=RankRAGCrossEncoder(model=reranker.model), top_n=5)  # for CrossEncoderReranker code

The components only translate LangChain types; what they do is :mod:`rankrag.integration`'s, shared with
``rankrag_llamaindex``: blank documents (empty or whitespace-only text) never take a top-n slot and never
reach the generator, an empty prompt is a ValueError, and the same scores go into document metadata.
"""

from __future__ import annotations

try:
    import langchain_core  # noqa: F401
except ImportError as error:  # pragma: no cover - exercised by a test that hides langchain_core
    from rankrag.errors import MissingDependencyError

    raise MissingDependencyError(
        'rankrag_langchain needs LangChain, which is not installed. Install it with: pip install "rankrag[langchain]"'
    ) from error

from rankrag_langchain.chain import create_rankrag_chain
from rankrag_langchain.chat_model import RankRAGLLM
from rankrag_langchain.cross_encoder import RankRAGCrossEncoder
from rankrag_langchain.embeddings import embedded_embeddings
from rankrag_langchain.reranker import RankRAGReranker

__all__ = ["RankRAGCrossEncoder", "RankRAGLLM", "RankRAGReranker", "create_rankrag_chain", "embedded_embeddings"]

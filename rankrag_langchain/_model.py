"""Pydantic fields shared by the LangChain components: which RankRAGModel they run on.

The fields are :class:`rankrag.integration.load_options.LoadOptions` with its defaults; the model resolves
through :func:`rankrag.integration.load_options.shared_model`, whose process-wide registry hands out one
instance per load spec, so a reranker and a chat model built from the same name (or the same
``RankRAGModel``) hold one copy of the weights.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rankrag.integration.load_options import LOAD_DEFAULTS, LoadOptions, shared_model
from rankrag.model.rankrag_model import RankRAGModel
from rankrag.model.resolve import merge_model_names


def _is_name(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike))


class RankRAGModelFields(BaseModel):
    """``model=`` a loaded :class:`RankRAGModel` (or a model name), or ``model_name=`` plus load options."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: RankRAGModel | None = Field(default=None, exclude=True)
    """The shared model. Filled from ``model_name`` and the load options when not given."""
    model_name: str | None = None
    """Hugging Face id, local directory or ``.gguf`` file; None for the embedded SmolLM2 default."""
    dtype: str = LOAD_DEFAULTS.dtype
    quantization: str | None = LOAD_DEFAULTS.quantization
    device: str = LOAD_DEFAULTS.device
    adapter: str | None = LOAD_DEFAULTS.adapter
    """The RankRAG adapter: it ranks, and answers unless ``answerer_adapter`` says otherwise."""
    answerer_adapter: str | None = LOAD_DEFAULTS.answerer_adapter
    """The answerer's own adapter, None for the base weights, "default" for what ``adapter``'s calibration records."""
    trust_remote_code: bool = LOAD_DEFAULTS.trust_remote_code
    embedding_model: str | None = LOAD_DEFAULTS.embedding_model
    """The dense signal's embedding model: "default" (the embedded all-MiniLM-L6-v2), a sentence-transformers
    directory or Hugging Face id, or None (off)."""

    @model_validator(mode="before")
    @classmethod
    def _model_given_by_name(cls, values: Any) -> Any:
        """``model="some/id"`` (the usual LangChain spelling) and ``source=`` (as in
        :meth:`RankRAGModel.load`) both mean ``model_name``; paths are accepted as names."""
        if not isinstance(values, dict):
            return values
        values = dict(values)
        name = merge_model_names(
            source=values.pop("source", None),
            model=values.pop("model") if _is_name(values.get("model")) else None,
            model_name=values.get("model_name"),
        )
        if name is not None:
            values["model_name"] = name
        for key in ("adapter", "answerer_adapter", "embedding_model"):
            if isinstance(values.get(key), os.PathLike):
                values[key] = os.fspath(values[key])
        return values

    @model_validator(mode="after")
    def _resolve_model(self) -> RankRAGModelFields:
        self.model = shared_model(self.model, model_name=self.model_name, options=LoadOptions.of(self))
        return self

    @property
    def rankrag_model(self) -> RankRAGModel:
        """The loaded model (never None once the component is built)."""
        if self.model is None:  # only reachable if a caller set ``model = None`` afterwards
            raise ValueError("this component has no model; build it with model= or model_name=")
        return self.model

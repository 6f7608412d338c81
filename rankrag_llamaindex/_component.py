"""The shared-model part of the LlamaIndex components: load keywords, ``model_name``, ``to_dict``/``from_dict``."""

from __future__ import annotations

import os
from typing import Any

from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.schema import BaseComponent
from typing_extensions import Self

from rankrag.integration.load_options import LOAD_DEFAULTS, LoadOptions, shared_model
from rankrag.model.rankrag_model import RankRAGModel
from rankrag_llamaindex import _convert


class RankRAGComponent(BaseComponent):
    """A LlamaIndex component on a shared :class:`RankRAGModel`: ``model=`` a loaded model or a name, or
    ``source=`` / ``model_name=`` and the load options of :class:`rankrag.integration.load_options.LoadOptions`
    (with its defaults, as in ``rankrag_langchain``).

    A subclass states ``__init__ = RankRAGComponent.__init__``: type checkers otherwise give a pydantic model the
    ``__init__`` of its fields alone, without the load keywords.
    """

    model_name: str = Field(description="Name of the loaded RankRAG model.")

    _model: RankRAGModel = PrivateAttr()

    def __init__(
        self,
        model: RankRAGModel | str | os.PathLike[str] | None = None,
        *,
        source: str | os.PathLike[str] | None = None,
        model_name: str | os.PathLike[str] | None = None,
        dtype: str = LOAD_DEFAULTS.dtype,
        quantization: str | None = LOAD_DEFAULTS.quantization,
        device: str = LOAD_DEFAULTS.device,
        adapter: str | os.PathLike[str] | None = LOAD_DEFAULTS.adapter,
        answerer_adapter: str | os.PathLike[str] | None = LOAD_DEFAULTS.answerer_adapter,
        trust_remote_code: bool = LOAD_DEFAULTS.trust_remote_code,
        embedding_model: str | os.PathLike[str] | None = LOAD_DEFAULTS.embedding_model,
        **fields: Any,
    ) -> None:
        options = LoadOptions(
            dtype=dtype,
            quantization=quantization,
            device=device,
            adapter=None if adapter is None else os.fspath(adapter),
            answerer_adapter=None if answerer_adapter is None else os.fspath(answerer_adapter),
            trust_remote_code=trust_remote_code,
            embedding_model=None if embedding_model is None else os.fspath(embedding_model),
        )
        resolved = shared_model(model, source=source, model_name=model_name, options=options)
        data: dict[str, Any] = {"model_name": resolved.name, **fields}
        super().__init__(**data)
        self._model = resolved

    def to_dict(self, **kwargs: Any) -> dict[str, Any]:
        """The settings and the model's load arguments: ``from_dict`` rebuilds the component (the same shared model)."""
        return {**super().to_dict(**kwargs), _convert.LOAD_KEY: _convert.load_spec(self._model)}

    @classmethod
    def from_dict(cls, data: dict[str, Any], **kwargs: Any) -> Self:
        return cls(**_convert.from_serialized({**data, **kwargs}))

    @property
    def model(self) -> RankRAGModel:
        """The shared RankRAGModel this component runs on."""
        return self._model

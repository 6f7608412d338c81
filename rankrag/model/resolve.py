"""Which RankRAGModel a framework component runs on: one given, or one loaded (and shared) from a name.

LangChain and LlamaIndex components accept the model as ``model=`` (a loaded model or a name), ``source=``
(as :meth:`RankRAGModel.load` calls it) or ``model_name=`` (the frameworks' spelling). They all resolve it here,
so that equal arguments give the one shared instance across both frameworks.
"""

from __future__ import annotations

import os
from typing import Any

from rankrag.model.rankrag_model import RankRAGModel

ModelName = str | os.PathLike[str]


def merge_model_names(**names: ModelName | None) -> str | None:
    """The one model name among several spellings (``model=``, ``source=``, ``model_name=``), or None."""
    given = {key: os.fspath(name) for key, name in names.items() if name is not None}
    if len(set(given.values())) > 1:
        raise ValueError(f"{' and '.join(sorted(given))} name different models; pass the model name once")
    return next(iter(given.values()), None)


def resolve_model(
    model: RankRAGModel | ModelName | None = None,
    *,
    source: ModelName | None = None,
    model_name: ModelName | None = None,
    **options: Any,
) -> RankRAGModel:
    """``model`` itself when it is a loaded model, else ``RankRAGModel.load(name, **options)``.

    ``options`` are the :meth:`RankRAGModel.load` options the caller set; they cannot come with a loaded model.
    """
    if isinstance(model, RankRAGModel):
        if source is not None or model_name is not None or options:
            conflicting = sorted([*options, *(k for k, v in (("source", source), ("model_name", model_name)) if v)])
            raise ValueError(
                f"got a loaded RankRAGModel together with load options {conflicting}; pass one or the other"
            )
        return model
    if model is not None and not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model must be a RankRAGModel, a model name or path, or None; got {type(model).__name__}")
    return RankRAGModel.load(merge_model_names(model=model, source=source, model_name=model_name), **options)

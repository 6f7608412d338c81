"""Which shared :class:`RankRAGModel` a framework component runs on.

A component takes ``model=`` (a loaded model or a name), ``source=`` or ``model_name=`` (other spellings of
the name), and the :meth:`RankRAGModel.load` options below with ``load``'s own defaults. An option differing
from its default counts as set: it goes to ``load``, and beside a loaded model it is an error. Equal
arguments give one instance process-wide, across both frameworks.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from rankrag.model.rankrag_model import RankRAGModel
from rankrag.model.resolve import ModelName, resolve_model


@dataclass(frozen=True)
class LoadOptions:
    """The :meth:`RankRAGModel.load` options a framework component takes, with ``load``'s defaults."""

    dtype: str = "auto"
    quantization: str | None = None
    device: str = "auto"
    adapter: str | None = "default"
    answerer_adapter: str | None = "default"
    trust_remote_code: bool = False
    embedding_model: str | None = "default"

    @classmethod
    def of(cls, component: Any) -> LoadOptions:
        """The options a component holds, read from its attributes of the same names."""
        return cls(**{field.name: getattr(component, field.name) for field in fields(cls)})

    def changed(self) -> dict[str, str | bool | None]:
        """The options that differ from the defaults, by name."""
        return {
            field.name: getattr(self, field.name)
            for field in fields(self)
            if getattr(self, field.name) != getattr(LOAD_DEFAULTS, field.name)
        }


LOAD_DEFAULTS = LoadOptions()
"""The defaults both frameworks' components declare."""


def shared_model(
    model: RankRAGModel | ModelName | None = None,
    *,
    source: ModelName | None = None,
    model_name: ModelName | None = None,
    options: LoadOptions = LOAD_DEFAULTS,
) -> RankRAGModel:
    """``model`` itself when it is a loaded model (no name and no changed option may come with it), else the
    shared instance :meth:`RankRAGModel.load` gives for the name and the changed options."""
    return resolve_model(model, source=source, model_name=model_name, **options.changed())


def check_pipeline_options(model_options: dict[str, Any], ready: tuple[object | None, ...], builds: str) -> None:
    """A pipeline builder (the LangChain chain, the LlamaIndex query engine) takes model options only for the
    components it builds itself: beside a ready reranker or LLM, which has its model already, they are an error."""
    if model_options and any(component is not None for component in ready):
        raise ValueError(
            f"got model options {sorted(model_options)} and a ready reranker or llm, which already has a model; "
            f"pass the options to the components you build, or let the {builds} build both"
        )

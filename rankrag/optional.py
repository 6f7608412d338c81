"""Optional dependencies: import one on first use, or say which ``rankrag[extra]`` installs it.

The core (``rankrag``) depends on no framework; LangChain, LlamaIndex, Chroma, the evaluation and
training libraries are extras (see ``[project.optional-dependencies]`` in ``pyproject.toml``). Code that
needs one calls :func:`require` where it is used, never at module import time.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from rankrag.errors import MissingDependencyError


def install_hint(extra: str) -> str:
    """The install command for an extra: ``pip install "rankrag[extra]"``."""
    return f'pip install "rankrag[{extra}]"'


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module``, or raise :class:`MissingDependencyError` naming the extra that provides it.

    ``purpose`` says what needed it (``"the llm_rerank baseline"``) and starts the message::

        the llm_rerank baseline needs llama_index.core (No module named 'llama_index');
        install it with: pip install "rankrag[llamaindex]"
    """
    try:
        return importlib.import_module(module)
    except MissingDependencyError:
        raise  # raised inside the module, already naming its fix
    except ImportError as error:
        reason = f" ({error})" if str(error) else ""
        raise MissingDependencyError(
            f"{purpose} needs {module}{reason}; install it with: {install_hint(extra)}"
        ) from error

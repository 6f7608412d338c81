"""The server process ``rankrag serve`` starts: ``python -m rankrag.served.llama_server [--no-extra-buffer-types]
ARGS`` runs ``python -m llama_cpp.server ARGS`` (llama-cpp-python's stock server).

``--no-extra-buffer-types`` switches llama.cpp's extra CPU buffer types (AMX, weight repacking) off for every model
the server loads. On a VM whose CPU advertises AMX, llama.cpp's AMX kernels end the process with a segmentation fault
on the first batch of more than one token (seen on this project's machines); without the extra buffer types the same
model runs on llama.cpp's plain CPU kernels. llama-cpp-python's server has no option for it, so the default model
parameters are patched before the server module runs. The server is otherwise the stock one.
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Sequence
from typing import Any

NO_EXTRA_BUFFER_TYPES = "--no-extra-buffer-types"


def switch_off_extra_buffer_types() -> None:
    """Make llama-cpp-python create every model with ``use_extra_bufts = False``."""
    import llama_cpp.llama_cpp as low_level

    default_params = low_level.llama_model_default_params

    def params_without_extra_buffer_types() -> Any:
        params = default_params()
        params.use_extra_bufts = False
        return params

    low_level.llama_model_default_params = params_without_extra_buffer_types


def main(argv: Sequence[str]) -> None:
    args = list(argv)
    if args[:1] == [NO_EXTRA_BUFFER_TYPES]:
        switch_off_extra_buffer_types()
        args = args[1:]
    sys.argv = ["llama_cpp.server", *args]
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])

"""``python llama_server_launcher.py ARGS`` = ``python -m llama_cpp.server ARGS`` with llama.cpp's extra CPU buffer
types (AMX, weight repacking) switched off.

Used only where the stock server crashes: on a VM whose CPU advertises AMX, llama.cpp's AMX kernels end the
process with a segmentation fault on the first batch of more than one token (seen on this project's test
machine). Without the extra buffer types the same model runs on llama.cpp's plain CPU kernels; the server is
otherwise the stock one.
"""

from __future__ import annotations

import runpy

import llama_cpp.llama_cpp as low_level

_default_params = low_level.llama_model_default_params


def _params_without_extra_buffer_types():  # type: ignore[no-untyped-def]
    params = _default_params()
    params.use_extra_bufts = False
    return params


low_level.llama_model_default_params = _params_without_extra_buffer_types
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)

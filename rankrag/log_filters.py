"""Filters for log messages of libraries rankrag uses that are noise for rankrag's users.

Installed when ``rankrag`` is imported (this module imports nothing heavy), so they are in place before
peft or transformers import bitsandbytes.
"""

from __future__ import annotations

import logging


class OncePerProcess(logging.Filter):
    """Lets a log message whose format starts with ``prefix`` through the first time only."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix
        self.seen = False

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith(self.prefix):
            return True
        if self.seen:
            return False
        self.seen = True
        return True


class Dropped(logging.Filter):
    """Drops log messages whose format starts with ``prefix``."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


def install() -> None:
    # bitsandbytes logs on every int8 matmul with float32 inputs; once is informative, thousands are noise.
    logging.getLogger("bitsandbytes.autograd._functions").addFilter(OncePerProcess("MatMul8bitLt: inputs will be cast"))
    # Importing bitsandbytes (peft and transformers do whenever it is installed) without the optional `kernels`
    # package logs this in every process, even when nothing is quantized; quantized CUDA loads never use it.
    logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(Dropped("Failed to load CPU gemm_4bit_forward"))


install()

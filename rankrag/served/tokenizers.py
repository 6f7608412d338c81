"""The tokenizer of a served model: the client builds every prompt's token ids with it, as in-process."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from transformers import AutoTokenizer, PreTrainedTokenizerBase

from rankrag.errors import ModelNotFoundError
from rankrag.model import loading

TokenizerSource = PreTrainedTokenizerBase | str | os.PathLike[str] | None


@lru_cache(maxsize=1)
def embedded_tokenizer() -> PreTrainedTokenizerBase:
    """The embedded SmolLM2 GGUF's tokenizer, as the in-process model loads it (its materialised copy when
    one exists, which loads in milliseconds; else read from the GGUF file)."""
    directory, gguf_file = loading.resolve_source(None)
    assert gguf_file is not None
    materialized = loading.materialized_location(Path(directory) / gguf_file)
    if (materialized / "tokenizer_config.json").is_file():
        return AutoTokenizer.from_pretrained(materialized)
    return AutoTokenizer.from_pretrained(directory, gguf_file=gguf_file)


def resolve_tokenizer(tokenizer: TokenizerSource) -> PreTrainedTokenizerBase:
    """A tokenizer object, a tokenizer directory / ``.gguf`` file / Hugging Face id, or None (embedded)."""
    if tokenizer is None:
        return embedded_tokenizer()
    if isinstance(tokenizer, PreTrainedTokenizerBase):
        return tokenizer
    if not isinstance(tokenizer, (str, os.PathLike)):
        raise TypeError(
            f"tokenizer must be a Hugging Face tokenizer, a tokenizer directory or id, a .gguf file or None; "
            f"got {type(tokenizer).__name__}"
        )
    text = os.fspath(tokenizer)
    path = Path(text).expanduser()
    try:
        if path.is_file() and path.suffix == ".gguf":
            return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        if path.is_dir() and not any((path / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json")):
            ggufs = sorted(path.glob("*.gguf"))
            if len(ggufs) == 1:
                return AutoTokenizer.from_pretrained(str(path), gguf_file=ggufs[0].name)
        return AutoTokenizer.from_pretrained(text)
    except (OSError, ValueError) as error:
        raise ModelNotFoundError(f"could not load the tokenizer {text!r}: {str(error).splitlines()[0]}") from error

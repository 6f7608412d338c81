"""Where a model's fusion calibration (the ``alpha`` picked by ``rankrag calibrate``) is kept.

Looked up, in order: the adapter directory, the local model directory (or the folder of a ``.gguf`` file,
where ``rankrag export`` puts one), then the user cache (``~/.cache/rankrag/calibration/<model name>.json``).
``save_calibration`` writes to the first of those that is writable.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from rankrag.files import write_text_atomic
from rankrag.model.loading import CALIBRATION_FILE, ModelSpec, cache_dir

__all__ = ["CALIBRATION_FILE", "calibration_paths", "load_calibration", "read_calibration_file", "save_calibration"]


def calibration_paths(spec: ModelSpec | None, name: str) -> list[Path]:
    paths = []
    if spec is not None and spec.ranker_adapter and Path(spec.ranker_adapter).is_dir():
        paths.append(Path(spec.ranker_adapter) / CALIBRATION_FILE)
    elif spec is not None and Path(spec.source).is_dir():
        beside = Path(spec.source) / CALIBRATION_FILE
        if spec.gguf_file is None or beside.is_file():  # beside a .gguf file only to read (`rankrag export`)
            paths.append(beside)
    safe_name = "".join(ch if ch.isalnum() or ch in "._-+" else "_" for ch in name)
    paths.append(cache_dir() / "calibration" / f"{safe_name}.json")
    return paths


def load_calibration(spec: ModelSpec | None, name: str) -> dict[str, Any] | None:
    for path in calibration_paths(spec, name):
        if path.is_file():
            return dict(json.loads(path.read_text(encoding="utf-8")))
    return None


def read_calibration_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """One ``rankrag_calibration.json`` (or the directory holding one, as ``rankrag export`` writes it), checked."""
    file = Path(path).expanduser()
    if file.is_dir():
        file = file / CALIBRATION_FILE
    try:
        record = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"calibration {str(file)!r} cannot be read: {error}") from error
    alpha = record.get("alpha") if isinstance(record, dict) else None
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"calibration {str(file)!r} holds no alpha between 0 and 1")
    return dict(record)


def save_calibration(spec: ModelSpec | None, name: str, calibration: dict[str, Any], path: Path | None = None) -> Path:
    """Write ``calibration`` (must hold ``alpha``) atomically; returns the file written."""
    alpha = calibration.get("alpha")
    if not isinstance(alpha, (int, float)) or not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"calibration needs an alpha between 0 and 1, got {alpha!r}")
    targets = [path] if path is not None else calibration_paths(spec, name)
    last_error: OSError | None = None
    for target in targets:
        try:
            return write_text_atomic(target, json.dumps(calibration, indent=2, sort_keys=True))
        except OSError as error:
            last_error = error
    raise OSError(f"could not write the calibration anywhere: {last_error}")

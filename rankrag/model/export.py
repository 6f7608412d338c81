"""Export a loaded RankRAG model (base + merged adapter) for serving: a safetensors directory, and a GGUF.

The safetensors directory is what vLLM serves (``vllm serve DIR``); the GGUF is what llama.cpp's server and
Ollama serve. The GGUF is written from the model's own base GGUF: every tensor the adapter left unchanged is
copied byte for byte (keeping its quantization), and each changed one is written as the base tensor plus the
adapter's update, quantized to ``Q8_0`` (or stored as ``F16``/``F32``). Tensor names and the query/key row
order that llama.cpp expects come from the ``gguf`` library, the one transformers reads GGUF files with.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch

from rankrag.errors import UnsupportedConfigurationError
from rankrag.model.calibration_store import CALIBRATION_FILE
from rankrag.model.local_backend import LocalBackend

if TYPE_CHECKING:
    import numpy as np

    from rankrag.model.rankrag_model import RankRAGModel

GGUF_PATH = Path("gguf") / "model.gguf"  # its own folder: a GGUF beside tokenizer files loads them instead
GgufType = Literal["Q8_0", "F16", "F32"]
GGUF_TYPES: tuple[GgufType, ...] = ("Q8_0", "F16", "F32")
# The base GGUF holds the weights quantized; a copy dequantized by transformers differs from it by at most
# this much per weight after the row reordering, which is how the reordering is checked.
_MATCH_TOLERANCE = 1e-3


def check_output(output: Path) -> Path:
    """The export target must not exist yet, or be an empty directory: nothing already there is overwritten."""
    output = Path(output).expanduser()
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise FileExistsError(f"{str(output)!r} already exists and is not an empty directory; choose a new --output")
    return output


def _exportable(model: RankRAGModel) -> LocalBackend:
    """The model's weights, when they are loaded here in a form that can be written out."""
    backend = model.backend
    if not isinstance(backend, LocalBackend):
        raise UnsupportedConfigurationError("a served model holds no weights here to export; export where it is loaded")
    if backend.spec is not None and backend.spec.quantization is not None:
        raise UnsupportedConfigurationError(
            f"the model is loaded {backend.spec.quantization} with bitsandbytes; export loads it unquantized "
            f"(drop quantization=) so that the adapter can be merged into full-precision weights"
        )
    if hasattr(backend.model, "peft_config"):
        raise UnsupportedConfigurationError(
            "the model still holds an unmerged PEFT adapter; load it without quantization"
        )
    return backend


def export_model(model: RankRAGModel, output: Path, *, gguf: bool = False, gguf_type: GgufType = "Q8_0") -> Path:
    """Write ``model`` (its adapter merged) to the new directory ``output``; returns it.

    The directory loads with ``RankRAGModel.load(output)`` (its calibration travels along) and serves with
    vLLM. ``gguf=True`` also writes ``output/gguf/model.gguf`` for llama.cpp, for models loaded from a GGUF.
    The directory appears whole or not at all.
    """
    output = check_output(output)
    backend = _exportable(model)
    spec = backend.spec
    if gguf and (spec is None or spec.gguf_file is None):
        raise UnsupportedConfigurationError(
            "gguf=True writes the GGUF from the model's base GGUF, and this model was not loaded from one; "
            "convert the exported directory with llama.cpp's convert_hf_to_gguf.py"
        )
    if gguf_type not in GGUF_TYPES:
        raise ValueError(f"unknown gguf_type {gguf_type!r}; choose one of {GGUF_TYPES}")
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        backend.model.save_pretrained(staging, safe_serialization=True)
        backend.tokenizer.save_pretrained(staging)
        folders = [staging]
        if gguf:
            assert spec is not None and spec.gguf_file is not None
            (staging / GGUF_PATH).parent.mkdir()
            write_merged_gguf(backend, Path(spec.source) / spec.gguf_file, staging / GGUF_PATH, gguf_type)
            folders.append((staging / GGUF_PATH).parent)
        calibration = backend.calibration()
        for folder in folders if calibration is not None else ():
            (folder / CALIBRATION_FILE).write_text(json.dumps(calibration, indent=2, sort_keys=True), encoding="utf-8")
        _readable(staging)
        if output.exists():
            output.rmdir()  # empty, checked above
        os.replace(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return output


def _readable(folder: Path) -> None:
    """Give the export the usual permissions (a temporary directory is created private to its owner)."""
    umask = os.umask(0)
    os.umask(umask)
    for path in [folder, *folder.rglob("*")]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def _reorder_for_llama_cpp(weight: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's row order for query/key projections of Llama-style rotary attention (as its converter writes)."""
    return (
        weight.reshape(heads, 2, weight.shape[0] // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)
    )


def _base_state(backend: LocalBackend) -> dict[str, torch.Tensor]:
    """The base model's weights (no adapter), as the in-process loader materialises them."""
    from rankrag.model.loading import load_model_and_tokenizer

    assert backend.spec is not None
    base, _ = load_model_and_tokenizer(dataclasses.replace(backend.spec, adapter=None, dtype="float32", device="cpu"))
    return {name: tensor.detach() for name, tensor in base.state_dict().items()}


def write_merged_gguf(backend: LocalBackend, base_gguf: Path, target: Path, gguf_type: GgufType = "Q8_0") -> int:
    """Write ``target``: ``base_gguf`` with every tensor the merged adapter changed replaced. Returns their count."""
    import gguf
    from gguf.quants import dequantize, quantize

    reader = gguf.GGUFReader(str(base_gguf))
    field = reader.get_field(gguf.Keys.General.ARCHITECTURE)
    architecture = str(field.contents()) if field is not None else "unknown"
    if architecture != "llama":
        raise UnsupportedConfigurationError(
            f"GGUF export supports Llama-architecture GGUFs (SmolLM2, Llama); {base_gguf.name} is {architecture!r}"
        )
    config = backend.model.config
    blocks = int(config.num_hidden_layers)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, blocks)
    merged = {name: tensor.detach().float().cpu() for name, tensor in backend.model.state_dict().items()}
    base = _base_state(backend)
    heads = {"attn_q": int(config.num_attention_heads), "attn_k": int(config.num_key_value_heads)}

    updates: dict[str, np.ndarray] = {}  # GGUF name -> the adapter's change, in llama.cpp's row order
    references: dict[str, np.ndarray] = {}  # GGUF name -> the loaded base weight, to check that order against
    for hf_name, weight in merged.items():
        if hf_name not in base or torch.equal(weight, base[hf_name]):
            continue
        gguf_name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise UnsupportedConfigurationError(f"no GGUF tensor name for the changed weight {hf_name!r}")
        update = (weight - base[hf_name]).numpy()
        reference = base[hf_name].numpy()
        kind = gguf_name.split(".")[-2]
        if kind in heads:
            update, reference = (
                _reorder_for_llama_cpp(update, heads[kind]),
                _reorder_for_llama_cpp(reference, heads[kind]),
            )
        updates[gguf_name] = update
        references[gguf_name] = reference

    writer = gguf.GGUFWriter(str(target), architecture, endianess=reader.endianess)
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue
        value_type = field.types[0]
        sub_type = field.types[-1] if value_type == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), value_type, sub_type=sub_type)

    changed = 0
    quant = gguf.GGMLQuantizationType[gguf_type]
    for tensor in reader.tensors:
        update = updates.get(tensor.name)
        if update is None:
            writer.add_tensor(tensor.name, tensor.data, raw_shape=tensor.data.shape, raw_dtype=tensor.tensor_type)
            continue
        original = dequantize(tensor.data, tensor.tensor_type).astype("float32")
        reference = references[tensor.name]
        gap = float(abs(original - reference).max()) if original.shape == reference.shape else float("inf")
        if gap > _MATCH_TOLERANCE:
            raise UnsupportedConfigurationError(
                f"the GGUF tensor {tensor.name} does not match the loaded base weight (largest gap {gap:.3g}); "
                f"the model was not loaded from {base_gguf.name}"
            )
        new = original + update
        data = (
            quantize(new, quant) if gguf_type == "Q8_0" else new.astype("float16" if gguf_type == "F16" else "float32")
        )
        writer.add_tensor(tensor.name, data, raw_shape=data.shape, raw_dtype=quant)
        changed += 1
    if changed != len(updates):
        raise UnsupportedConfigurationError(
            f"{len(updates) - changed} changed weights have no tensor in {base_gguf.name}"
        )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return changed

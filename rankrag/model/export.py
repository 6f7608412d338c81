"""Export a loaded RankRAG model for serving: the base weights with each role's adapter beside them, and GGUFs.

The safetensors directory holds the base model and ``adapters/ranker`` (and ``adapters/answerer`` when the answerer
has an adapter of its own) in PEFT's format: ``RankRAGModel.load(OUTPUT)`` loads the roles from it, and vLLM serves
it with ``--enable-lora --lora-modules ranker=OUTPUT/adapters/ranker answerer=...``, each request naming its role.
llama.cpp's Python server cannot switch adapters per request, so the GGUFs are one merged model per role:
``gguf/model.gguf`` (the ranker's weights) and, when the answerer's differ, ``gguf/answerer.gguf``, which
``rankrag serve`` serves as two models. Each GGUF is written from the model's own base GGUF: every tensor the role's
adapter leaves unchanged is copied byte for byte (keeping its quantization), and each changed one is written as the
base tensor plus the adapter's update, quantized to ``Q8_0`` (or stored as ``F16``/``F32``). Tensor names and the
query/key row order that llama.cpp expects come from the ``gguf`` library, the one transformers reads GGUF files with.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from rankrag.errors import UnsupportedConfigurationError
from rankrag.model.calibration_store import CALIBRATION_FILE
from rankrag.model.local_backend import LocalBackend
from rankrag.model.roles import Role, collect_deltas

if TYPE_CHECKING:
    import numpy as np
    from transformers import PreTrainedModel

    from rankrag.model.loading import ModelSpec
    from rankrag.model.rankrag_model import RankRAGModel

GGUF_PATH = Path("gguf") / "model.gguf"  # its own folder: a GGUF beside tokenizer files loads them instead
ANSWERER_GGUF_PATH = Path("gguf") / "answerer.gguf"
ADAPTERS_DIR = Path("adapters")
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
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
    """The model's weights, when they are loaded here from a source that can be written out."""
    backend = model.backend
    if not isinstance(backend, LocalBackend):
        raise UnsupportedConfigurationError("a served model holds no weights here to export; export where it is loaded")
    if backend.spec is None:
        raise UnsupportedConfigurationError(
            "the model was built from a (model, tokenizer) pair; export loads the base again from its source, so "
            "load it by name (RankRAGModel.load(source, adapter=...))"
        )
    if backend.spec.quantization is not None:
        raise UnsupportedConfigurationError(
            f"the model is loaded {backend.spec.quantization} with bitsandbytes; export writes full-precision "
            f"weights (drop quantization=)"
        )
    return backend


def _copy_adapter(adapter: str, target: Path) -> None:
    """The adapter's PEFT files (a local directory, or a Hugging Face id already in the cache) into ``target``."""
    target.mkdir(parents=True)
    source = Path(adapter)
    for name in ADAPTER_FILES:
        if source.is_dir():
            shutil.copyfile(source / name, target / name)
        else:
            from huggingface_hub import hf_hub_download

            shutil.copyfile(hf_hub_download(adapter, name), target / name)


def export_model(model: RankRAGModel, output: Path, *, gguf: bool = False, gguf_type: GgufType = "Q8_0") -> Path:
    """Write ``model``'s base weights and its roles' adapters to the new directory ``output``; returns it.

    The directory loads with ``RankRAGModel.load(output)`` (its roles and calibration travel along) and serves with
    vLLM's multi-LoRA (docs/serving.md). ``gguf=True`` also writes ``output/gguf/model.gguf`` (the ranker's weights
    merged) and, when the answerer's weights differ, ``output/gguf/answerer.gguf``, for llama.cpp, for models loaded
    from a GGUF. The directory appears whole or not at all.
    """
    output = check_output(output)
    backend = _exportable(model)
    spec = backend.spec
    assert spec is not None
    if gguf and spec.gguf_file is None:
        raise UnsupportedConfigurationError(
            "gguf=True writes the GGUF from the model's base GGUF, and this model was not loaded from one; "
            "convert the exported directory with llama.cpp's convert_hf_to_gguf.py"
        )
    if gguf_type not in GGUF_TYPES:
        raise ValueError(f"unknown gguf_type {gguf_type!r}; choose one of {GGUF_TYPES}")
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        base = _base_model(spec)
        base.save_pretrained(staging, safe_serialization=True)
        backend.tokenizer.save_pretrained(staging)
        adapters = spec.adapters()
        for role, adapter in adapters.items():
            if role == "answerer" and adapter == spec.ranker_adapter:
                continue  # one adapter for both roles: the ranker's folder serves the answerer too
            _copy_adapter(adapter, staging / ADAPTERS_DIR / role)
        record = dict(backend.calibration() or {})
        _write_calibration(staging, record, _role_paths(spec, ADAPTERS_DIR))
        if "ranker" in adapters:
            _write_calibration(staging / ADAPTERS_DIR / "ranker", record, _role_paths(spec, Path("..")))
        if gguf:
            assert spec.gguf_file is not None
            (staging / GGUF_PATH).parent.mkdir()
            base_gguf = Path(spec.source) / spec.gguf_file
            base_state = {name: tensor.detach() for name, tensor in base.state_dict().items()}
            role_updates = _role_updates(base, adapters)
            write_merged_gguf(
                base.config, base_state, role_updates.get("ranker", {}), base_gguf, staging / GGUF_PATH, gguf_type
            )
            if spec.answerer_adapter != spec.ranker_adapter:
                write_merged_gguf(
                    base.config,
                    base_state,
                    role_updates.get("answerer", {}),
                    base_gguf,
                    staging / ANSWERER_GGUF_PATH,
                    gguf_type,
                )
            _write_calibration(staging / GGUF_PATH.parent, record, {})
        _readable(staging)
        if output.exists():
            output.rmdir()  # empty, checked above
        os.replace(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return output


def _role_paths(spec: ModelSpec, folder: Path) -> dict[str, str | None]:
    """Where each role's adapter lies, relative to a calibration file (``folder``: the adapters' folder from it)."""
    ranker = str(folder / "ranker") if spec.ranker_adapter else None
    if spec.answerer_adapter is None:
        answerer = None
    elif spec.answerer_adapter == spec.ranker_adapter:
        answerer = ranker
    else:
        answerer = str(folder / "answerer")
    paths = {"answerer_adapter": answerer}
    return paths if folder == Path("..") else {"ranker_adapter": ranker, **paths}


def _write_calibration(folder: Path, record: dict[str, Any], roles: dict[str, str | None]) -> None:
    if not record and not roles:
        return
    content = {**record, **roles}
    for key in ("ranker_adapter", "answerer_adapter"):
        if key not in roles:
            content.pop(key, None)
    (folder / CALIBRATION_FILE).write_text(json.dumps(content, indent=2, sort_keys=True), encoding="utf-8")


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


def _base_model(spec: ModelSpec) -> PreTrainedModel:
    """The base model (no adapter), float32 on the CPU, as the in-process loader materialises it."""
    from rankrag.model.loading import load_model_and_tokenizer

    base, _ = load_model_and_tokenizer(
        dataclasses.replace(spec, ranker_adapter=None, answerer_adapter=None, dtype="float32", device="cpu")
    )
    return base


def _role_updates(base: PreTrainedModel, adapters: dict[Role, str]) -> dict[Role, dict[str, torch.Tensor]]:
    """Each role's change to the base weights (``scale * B @ A`` per adapted layer), by weight name. ``base`` is
    wrapped by PEFT while an adapter is read and unwrapped again, unchanged."""
    from peft import PeftModel

    from rankrag.model.loading import peft_deprecations_silenced

    updates: dict[Role, dict[str, torch.Tensor]] = {}
    for role, adapter in adapters.items():
        with peft_deprecations_silenced():
            wrapped = PeftModel.from_pretrained(base, adapter, adapter_name="export")
        deltas = collect_deltas(wrapped, "export")
        wrapped.unload()
        updates[role] = {f"{name}.weight": delta.scale * (delta.b @ delta.a) for name, delta in deltas.items()}
    return updates


def write_merged_gguf(
    config: Any,
    base: dict[str, torch.Tensor],
    changes: dict[str, torch.Tensor],
    base_gguf: Path,
    target: Path,
    gguf_type: GgufType = "Q8_0",
) -> int:
    """Write ``target``: ``base_gguf`` with every weight in ``changes`` (HF name -> update to the ``base`` weight of
    a model with ``config``) replaced by base + update. Returns the count of tensors changed."""
    import gguf
    from gguf.quants import dequantize, quantize

    reader = gguf.GGUFReader(str(base_gguf))
    field = reader.get_field(gguf.Keys.General.ARCHITECTURE)
    architecture = str(field.contents()) if field is not None else "unknown"
    if architecture != "llama":
        raise UnsupportedConfigurationError(
            f"GGUF export supports Llama-architecture GGUFs (SmolLM2, Llama); {base_gguf.name} is {architecture!r}"
        )
    blocks = int(config.num_hidden_layers)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, blocks)
    heads = {"attn_q": int(config.num_attention_heads), "attn_k": int(config.num_key_value_heads)}

    updates: dict[str, np.ndarray] = {}  # GGUF name -> the adapter's change, in llama.cpp's row order
    references: dict[str, np.ndarray] = {}  # GGUF name -> the loaded base weight, to check that order against
    for hf_name, change in changes.items():
        if hf_name not in base:
            raise UnsupportedConfigurationError(f"the adapter changes {hf_name!r}, which the base model lacks")
        gguf_name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise UnsupportedConfigurationError(f"no GGUF tensor name for the changed weight {hf_name!r}")
        update = change.float().numpy()
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
        gguf_update = updates.get(tensor.name)
        if gguf_update is None:
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
        new = original + gguf_update
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

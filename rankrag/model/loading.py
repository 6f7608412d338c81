"""Turning a model source, precision, quantization, device and adapter into a loaded model."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from rankrag.errors import MissingDependencyError, ModelNotFoundError, UnsupportedConfigurationError
from rankrag.model import roles
from rankrag.model.embedded import EMBEDDED_LLM_NAME, embedded_llm_path

logger = logging.getLogger(__name__)

Quantization = Literal["4bit", "8bit"]
DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}
QUANTIZATIONS: dict[str, Quantization] = {"4bit": "4bit", "nf4": "4bit", "8bit": "8bit", "int8": "8bit"}
SHIPPED_ADAPTERS_DIR = Path(__file__).parent.parent / "adapters"
DEFAULT_ADAPTER_NAME = "smollm2-135m-rankrag"


@dataclass(frozen=True)
class ModelSpec:
    """A fully resolved load request; equal specs share one loaded model."""

    source: str
    gguf_file: str | None
    dtype: str
    quantization: Quantization | None
    device: str
    ranker_adapter: str | None
    answerer_adapter: str | None = None
    trust_remote_code: bool = False
    allow_pickle: bool = False

    @property
    def display_name(self) -> str:
        name = Path(self.gguf_file).stem if self.gguf_file else self.source.rstrip("/").split("/")[-1]
        if self.ranker_adapter:
            name += f"+{Path(self.ranker_adapter).name}"
        return name

    def adapters(self) -> dict[roles.Role, str]:
        """Each role's adapter, for the roles that have one."""
        chosen: dict[roles.Role, str | None] = {"ranker": self.ranker_adapter, "answerer": self.answerer_adapter}
        return {role: path for role, path in chosen.items() if path}


def resolve_device(device: str | None) -> str:
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UnsupportedConfigurationError(f"device={device!r} was asked for, but no CUDA GPU is available")
    if device != "cpu" and not device.startswith(("cuda", "mps", "xpu")):
        raise UnsupportedConfigurationError(f"unknown device {device!r}; use 'cpu', 'cuda', 'cuda:N' or 'auto'")
    for prefix, backend in (("mps", getattr(torch.backends, "mps", None)), ("xpu", getattr(torch, "xpu", None))):
        if device.startswith(prefix) and not (backend is not None and backend.is_available()):
            raise UnsupportedConfigurationError(
                f"device={device!r} was asked for, but this PyTorch build has no usable {prefix.upper()} device"
            )
    return device


def resolve_dtype(dtype: str | torch.dtype | None, device: str) -> str:
    if dtype is None or dtype == "auto":
        return "bfloat16" if device.startswith("cuda") and torch.cuda.is_bf16_supported() else "float32"
    if isinstance(dtype, torch.dtype):
        for name, value in DTYPES.items():
            if value == dtype and len(name) > 4:
                return name
    elif dtype in DTYPES:
        return str(DTYPES[dtype]).removeprefix("torch.")
    raise UnsupportedConfigurationError(
        f"unsupported precision {dtype!r}; choose one of float32, bfloat16, float16 (or 'auto')"
    )


def resolve_quantization(quantization: str | None, device: str) -> Quantization | None:
    if quantization in (None, "none", ""):
        return None
    if quantization not in QUANTIZATIONS:
        raise UnsupportedConfigurationError(f"unsupported quantization {quantization!r}; choose '4bit', '8bit' or None")
    if not (device == "cpu" or device.startswith("cuda")):
        raise UnsupportedConfigurationError(f"bitsandbytes quantization runs on CPU or CUDA, not on {device!r}")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as error:
        raise MissingDependencyError(
            f"quantization={quantization!r} needs bitsandbytes: pip install 'rankrag[quantization]'"
        ) from error
    return QUANTIZATIONS[quantization]


_HUB_ID = re.compile(r"[A-Za-z0-9_][\w.-]*(/[\w.-]+)?")


def _looks_like_path(source: str) -> bool:
    """Anything that is not shaped like a Hugging Face id (``name`` or ``org/name``) is a path."""
    return _HUB_ID.fullmatch(source) is None


def resolve_source(source: str | os.PathLike[str] | None) -> tuple[str, str | None]:
    """Return ``(directory or hub id, gguf file name or None)``."""
    if source is None:
        path = embedded_llm_path()
        return str(path.parent), path.name
    text = os.fspath(source)
    if not text.strip():
        raise ModelNotFoundError("the model source is an empty string")
    path = Path(text).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return str(path.resolve().parent), path.name
    if path.is_dir():
        if (path / "config.json").is_file():
            return str(path.resolve()), None
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return str(path.resolve()), ggufs[0].name
        if ggufs:
            raise ModelNotFoundError(
                f"model directory {text!r} holds several .gguf files ({', '.join(g.name for g in ggufs)}); "
                f"pass the path of one of them"
            )
        raise ModelNotFoundError(f"model directory {text!r} has no config.json and no .gguf file")
    if path.exists() or text.endswith(".gguf") or _looks_like_path(text):
        raise ModelNotFoundError(
            f"model {text!r} not found: no such directory, .gguf file or 'org/name' Hugging Face id"
        )
    require_cached_or_allowed(text, "config.json", "model")
    return text, None


ALLOW_DOWNLOADS_ENV = "RANKRAG_ALLOW_DOWNLOADS"


def downloads_allowed() -> bool:
    """Whether a Hugging Face id that is not in the local cache may be fetched: only when the user says so
    with ``RANKRAG_ALLOW_DOWNLOADS=1``, and never under ``HF_HUB_OFFLINE=1``."""
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    return not offline and os.environ.get(ALLOW_DOWNLOADS_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def require_cached_or_allowed(repo_id: str, filename: str, kind: str) -> None:
    """Fail at once, naming the problem, for an id that is neither a local path nor in the local Hugging Face
    cache, unless downloads are allowed: nothing is fetched at run time by default (no minute of retries)."""
    if downloads_allowed():
        return
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(repo_id, filename), str):
        return
    raise ModelNotFoundError(
        f"{kind} {repo_id!r} not found: no such local directory or file, and not in the local Hugging Face cache. "
        f"rankrag downloads nothing unless you allow it: set {ALLOW_DOWNLOADS_ENV}=1 to fetch {repo_id!r} from "
        f"the Hugging Face Hub (see 'Troubleshooting' in the rankrag docs: docs/troubleshooting.md in its source "
        f"repository)"
    )


AdapterChoice = str | os.PathLike[str] | None
CALIBRATION_FILE = (
    "rankrag_calibration.json"  # a model's calibration (rankrag.model.calibration_store); it records the roles
)


def recorded_roles(directory: Path) -> dict[str, Any]:
    """The role choices a calibration file in ``directory`` records (``ranker_adapter``, ``answerer_adapter``;
    paths relative to ``directory``, null for the base weights), or {} when it records none."""
    file = directory / CALIBRATION_FILE
    if not file.is_file():
        return {}
    try:
        record = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(record, dict):
        return {}
    return {key: record[key] for key in ("ranker_adapter", "answerer_adapter") if key in record}


def _recorded_path(directory: Path, value: object, key: str) -> str | None:
    if value is None:
        return None
    path = (directory / str(value)).resolve()
    if not (path / "adapter_config.json").is_file():
        raise ModelNotFoundError(
            f"{directory / CALIBRATION_FILE} names {key} {str(value)!r}, but {str(path)!r} holds no adapter_config.json"
        )
    return str(path)


def resolve_adapter(adapter: AdapterChoice, source: str, gguf_file: str | None) -> str | None:
    """The ranker's adapter (and by default the answerer's): None, "default" (the shipped adapter for the embedded
    model; what a ``rankrag export`` directory records; else none) or a directory or Hugging Face id."""
    if adapter is None or adapter == "none":
        return None
    if adapter == "default":
        shipped = SHIPPED_ADAPTERS_DIR / DEFAULT_ADAPTER_NAME
        is_embedded = gguf_file is not None and Path(gguf_file).stem.startswith(EMBEDDED_LLM_NAME)
        if is_embedded and (shipped / "adapter_config.json").is_file():
            return str(shipped)
        source_dir = Path(source)
        if gguf_file is None and source_dir.is_dir():
            return _recorded_path(source_dir, recorded_roles(source_dir).get("ranker_adapter"), "ranker_adapter")
        return None
    return _adapter_location(adapter)


def _adapter_location(adapter: str | os.PathLike[str]) -> str:
    path = Path(os.fspath(adapter)).expanduser()
    if path.is_dir():
        if not (path / "adapter_config.json").is_file():
            raise ModelNotFoundError(f"adapter directory {str(path)!r} has no adapter_config.json")
        return str(path.resolve())
    name = os.fspath(adapter)
    if _looks_like_path(name):
        raise ModelNotFoundError(f"no adapter directory named {name!r}")
    if not downloads_allowed():
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(name, "adapter_config.json"), str):
            raise ModelNotFoundError(
                f"no adapter directory named {name!r}, and no Hugging Face adapter {name!r} in the local cache "
                f"(rankrag downloads nothing unless {ALLOW_DOWNLOADS_ENV}=1)"
            )
    return name


def resolve_answerer_adapter(answerer_adapter: AdapterChoice, ranker_adapter: str | None, source: str) -> str | None:
    """The answerer's adapter: None (the base weights answer), "default" (what the ranker adapter's calibration
    records under ``answerer_adapter``, or a ``rankrag export`` directory's record; else the ranker's adapter,
    one adapter for both roles as RankRAG trains it) or a directory or Hugging Face id."""
    if answerer_adapter is None or answerer_adapter == "none":
        return None
    if answerer_adapter != "default":
        return _adapter_location(answerer_adapter)
    for directory in [Path(ranker_adapter)] if ranker_adapter else []:
        record = recorded_roles(directory) if directory.is_dir() else {}
        if "answerer_adapter" in record:
            return _recorded_path(directory, record["answerer_adapter"], "answerer_adapter")
    source_dir = Path(source)
    record = recorded_roles(source_dir) if source_dir.is_dir() else {}
    if "answerer_adapter" in record:
        return _recorded_path(source_dir, record["answerer_adapter"], "answerer_adapter")
    return ranker_adapter


def cache_dir() -> Path:
    return Path(os.environ.get("RANKRAG_CACHE_DIR", Path.home() / ".cache" / "rankrag"))


def _gguf_fingerprint(path: Path) -> str:
    """The file (name, size, first and last MiB) and the transformers version that converts it: versions read
    a GGUF's tokenizer differently, so one version's materialised directory is not another's."""
    import transformers

    digest = hashlib.sha256()
    size = path.stat().st_size
    digest.update(f"{path.name}:{size}:transformers-{transformers.__version__}".encode())
    with path.open("rb") as handle:
        digest.update(handle.read(1 << 20))
        handle.seek(max(0, size - (1 << 20)))
        digest.update(handle.read(1 << 20))
    return digest.hexdigest()[:16]


def materialized_location(gguf_path: Path) -> Path:
    """Where :func:`materialize_gguf` keeps the dequantized copy of ``gguf_path`` (it may not exist yet)."""
    return cache_dir() / "materialized" / f"{gguf_path.stem}-{_gguf_fingerprint(gguf_path)}"


def materialize_gguf(directory: str, gguf_file: str) -> Path:
    """Dequantize a GGUF file once into a plain safetensors model directory, cached on disk.

    transformers cannot apply a bitsandbytes config to a GGUF file, and dequantizing on every load
    costs seconds; the cached directory loads like any Hugging Face model.
    """
    gguf_path = Path(directory) / gguf_file
    target = materialized_location(gguf_path)
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    print(
        f"rankrag: converting {gguf_path.name} into a dequantized copy at {target} (once per transformers version; "
        f"about a minute and a half on 2 cores)",
        file=sys.stderr,
        flush=True,
    )
    with progress_bars_off(), gguf_conversion_bar_off():
        gguf_model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=gguf_file, dtype=torch.float32)
        config = gguf_model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(gguf_model.state_dict())
        del gguf_model
        tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=gguf_file)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
        try:
            model.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
            try:
                os.replace(staging, target)
            except OSError:  # another process finished first; its copy is identical
                shutil.rmtree(staging, ignore_errors=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    remove_stale_copies(gguf_path, keep=target)
    return target


def remove_stale_copies(gguf_path: Path, keep: Path) -> list[Path]:
    """Delete the dequantized copies of ``gguf_path`` made under other transformers versions (or of an earlier file
    of that name), older than ``keep``: each is a full copy of the model, and only the newest is read."""
    removed = []
    for other in keep.parent.glob(f"{gguf_path.stem}-*"):
        if other == keep or not other.is_dir() or "." in other.name[len(gguf_path.stem) + 1 :]:
            continue  # the kept copy, or another process's staging directory
        if other.stat().st_mtime <= keep.stat().st_mtime:
            shutil.rmtree(other, ignore_errors=True)
            removed.append(other)
    if removed:
        print(f"rankrag: removed {len(removed)} older dequantized copies of {gguf_path.name}", file=sys.stderr)
    return removed


def quantization_config(quantization: Quantization, dtype: torch.dtype) -> Any:
    from transformers import BitsAndBytesConfig

    if quantization == "4bit":
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=dtype,
            bnb_4bit_use_double_quant=True,
            llm_int8_skip_modules=["lm_head"],
        )
    return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=["lm_head"])


# Loads of less than this much weight take about a second: no progress bar for them, as for a cached tokenizer.
QUIET_LOAD_BYTES = 1 << 30


def _weights_bytes(location: str) -> int | None:
    """Size of a local model directory's weight files, or None for a hub id."""
    directory = Path(location)
    if not directory.is_dir():
        return None
    return sum(f.stat().st_size for f in directory.iterdir() if f.suffix in (".safetensors", ".bin", ".gguf"))


@contextmanager
def progress_bars_off() -> Iterator[None]:
    """transformers' progress bars off inside the block (restored after, if they were on)."""
    from transformers.utils import logging as transformers_logging

    if not transformers_logging.is_progress_bar_enabled():
        yield
        return
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers_logging.enable_progress_bar()


@contextmanager
def gguf_conversion_bar_off() -> Iterator[None]:
    """The GGUF conversion's progress bar off inside the block: a plain tqdm in transformers, out of reach of
    :func:`progress_bars_off`."""
    import transformers.modeling_gguf_pytorch_utils as gguf_utils

    original = getattr(gguf_utils, "tqdm", None)
    if original is None:
        yield
        return
    gguf_utils.tqdm = functools.partial(original, disable=True)
    try:
        yield
    finally:
        gguf_utils.tqdm = original


@contextmanager
def progress_bar_for(location: str) -> Iterator[None]:
    """transformers' "Loading weights" bar only for loads big enough to take a while."""
    size = _weights_bytes(location)
    if size is None or size >= QUIET_LOAD_BYTES:
        yield
        return
    with progress_bars_off():
        yield


def load_model_and_tokenizer(spec: ModelSpec) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    location = spec.source
    if spec.gguf_file is not None:
        location = str(materialize_gguf(spec.source, spec.gguf_file))
    dtype = DTYPES[spec.dtype]
    kwargs: dict[str, Any] = {
        "dtype": dtype,
        "trust_remote_code": spec.trust_remote_code,
        "use_safetensors": None if spec.allow_pickle else True,
    }
    if spec.quantization is not None:
        kwargs["quantization_config"] = quantization_config(spec.quantization, dtype)
        kwargs["device_map"] = {"": spec.device}
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=spec.trust_remote_code)
        with progress_bar_for(location):
            model: PreTrainedModel = AutoModelForCausalLM.from_pretrained(location, **kwargs)
    except (OSError, ValueError) as error:
        message = str(error)
        if "safetensors" in message.lower() and not spec.allow_pickle:
            raise ModelNotFoundError(
                f"model {spec.source!r} has no safetensors weights; pickle (.bin) weights load only with "
                f"allow_pickle=True, and only from a source you trust"
            ) from error
        if isinstance(error, OSError) or "not found" in message.lower() or "does not appear" in message:
            raise ModelNotFoundError(f"could not load model {spec.source!r}: {message.splitlines()[0]}") from error
        raise
    if spec.quantization is None:
        model = model.to(spec.device)  # type: ignore[arg-type]  # transformers types .to() for tensors, not device strings
    if spec.adapters():
        model = _apply_roles(model, spec)
    model.requires_grad_(False)
    return prepare_for_inference(model, tokenizer)


def prepare_for_inference(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Evaluation mode (no dropout, so scores are deterministic) and a pad token for batching.

    Also applied to caller-supplied (model, tokenizer) pairs, which often arrive in training mode.
    """
    model.eval()
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token is None:
            raise UnsupportedConfigurationError(
                "the tokenizer has neither a pad token nor an end-of-sequence token; set tokenizer.pad_token"
            )
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


ADAPTER_SAFETENSORS = "adapter_model.safetensors"


def _check_adapter_weights(adapter: str, allow_pickle: bool) -> None:
    """Adapters load from safetensors only, like models, unless ``allow_pickle``: PEFT itself falls back to a
    pickled adapter_model.bin when there is no safetensors file."""
    if allow_pickle:
        return
    local = Path(adapter)
    if local.is_dir():
        problem = None if (local / ADAPTER_SAFETENSORS).is_file() else "it holds no " + ADAPTER_SAFETENSORS
    else:
        from huggingface_hub import hf_hub_download

        try:
            hf_hub_download(adapter, ADAPTER_SAFETENSORS)
            problem = None
        except Exception as error:  # noqa: BLE001 - missing file, unknown repo or offline without a cached copy
            problem = f"no {ADAPTER_SAFETENSORS} could be found ({str(error).splitlines()[0]})"
    if problem is not None:
        raise ModelNotFoundError(
            f"adapter {adapter!r} cannot be loaded safely: {problem}; pickle (adapter_model.bin) adapters "
            f"load only with allow_pickle=True, and only from a source you trust"
        )


@contextmanager
def peft_deprecations_silenced() -> Iterator[None]:
    """peft 0.21 reads ``model.is_gradient_checkpointing``, which transformers 5.24 deprecates; the warning
    is about peft's code, not the caller's, so wrapping a model with an adapter does not print it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def _apply_roles(model: PreTrainedModel, spec: ModelSpec) -> PreTrainedModel:
    """``model`` with the ranker's adapter merged (kept unmerged on a quantized base) and, when the answerer's
    adapter differs, the per-thread role switch of :mod:`rankrag.model.roles` installed."""
    from peft import PeftModel

    adapters = spec.adapters()
    names = {path: f"rankrag_{index}" for index, path in enumerate(dict.fromkeys(adapters.values()))}
    peft_model: Any = model
    for path, name in names.items():
        _check_adapter_weights(path, spec.allow_pickle)
        try:
            with peft_deprecations_silenced():
                if isinstance(peft_model, PeftModel):
                    peft_model.load_adapter(path, adapter_name=name)
                else:
                    peft_model = PeftModel.from_pretrained(model, path, adapter_name=name)
        except (OSError, ValueError) as error:
            raise ModelNotFoundError(f"could not load adapter {path!r}: {str(error).splitlines()[0]}") from error
    deltas = {role: roles.collect_deltas(peft_model, names[path]) for role, path in adapters.items()}
    ranker = names.get(spec.ranker_adapter or "")
    if ranker is not None:
        peft_model.set_adapter(ranker)
    if spec.quantization is not None and ranker is not None:
        loaded: PreTrainedModel = peft_model  # a quantized base keeps the ranker's adapter unmerged
    elif ranker is not None:
        # Merged weights score as fast as the base model.
        loaded = peft_model.merge_and_unload(adapter_names=[ranker])
    else:
        loaded = peft_model.unload()
    if spec.answerer_adapter != spec.ranker_adapter:
        roles.install(loaded, deltas, roles.MERGED_ROLE)
    return loaded

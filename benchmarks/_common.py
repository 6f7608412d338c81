"""Helpers shared by the benchmark scripts: data selection, machine description, timing, output."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
TREC_FILE = Path("trec_dl_passage") / "bm25_top100.jsonl"


def default_data_dir() -> Path:
    """$RANKRAG_DATA_DIR, else ../shared/data beside the checkout (the layout the tests use)."""
    return Path(os.environ.get("RANKRAG_DATA_DIR") or REPO_ROOT.parent / "shared" / "data")


def read_trec(data_dir: Path) -> list[dict[str, Any]]:
    path = data_dir / TREC_FILE
    if not path.is_file():
        sys.exit(f"benchmark data not found: {path} (pass --data-dir or set RANKRAG_DATA_DIR)")
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def select_passages(tokenizer: Any, rows: list[dict[str, Any]], n: int, tokens: int) -> tuple[str, list[str]]:
    """One real TREC DL query and ``n`` distinct real passages of about ``tokens`` tokens (±7 %), in file order.

    Where too few passages have that length (long targets), consecutive passages are joined and cut
    to ``tokens`` tokens.
    """
    texts = list(dict.fromkeys(c["text"] for row in rows for c in row["candidates"]))
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    slack = max(2, round(tokens * 0.07))
    chosen = [t for t, length in zip(texts, lengths) if abs(length - tokens) <= slack][:n]
    if len(chosen) < n:
        chosen = []
        joined: list[int] = []
        for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]:
            joined += ids
            if len(joined) >= tokens:
                chosen.append(tokenizer.decode(joined[:tokens]))
                joined = []
                if len(chosen) == n:
                    break
    if len(chosen) < n:
        sys.exit(f"could not build {n} passages of ~{tokens} tokens from the data")
    return rows[0]["query"], chosen


def machine() -> dict[str, Any]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "nice": os.nice(0),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def commit() -> str | None:
    """The checked-out commit (with ``+dirty`` when the tree has changes), or None outside a git clone."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def stamp(argv: Sequence[str]) -> dict[str, Any]:
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python " + " ".join(shlex.quote(a) for a in argv),
        "commit": commit(),
    }


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_has_bf16() -> bool:
    """Native bfloat16 matrix instructions (AVX512-BF16 or AMX-BF16): where bfloat16 pays off on a CPU."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def matmul_gflops(dtype: Any, device: Any, size: int = 2048, seconds: float = 1.5) -> float:
    """Sustained rate of one large square matrix product, repeated for ``seconds``: the machine's practical
    peak for the dense work a transformer forward pass is made of."""
    import torch

    a = torch.randn(size, size, dtype=dtype, device=device)
    b = torch.randn(size, size, dtype=dtype, device=device)
    for _ in range(2):
        torch.mm(a, b)
    synchronize(device)
    runs, start = 0, time.perf_counter()
    while True:
        torch.mm(a, b)
        runs += 1
        if runs % 2 == 0:
            synchronize(device)
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                return 2.0 * size**3 * runs / elapsed / 1e9


def synchronize(device: Any) -> None:
    import torch

    if getattr(device, "type", str(device)).startswith("cuda"):
        torch.cuda.synchronize()


def timed(function: Callable[[], Any], device: Any) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds of this process, result). CPU time is less disturbed by other work
    on a shared machine; wall time is what a user waits."""
    synchronize(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    result = function()
    synchronize(device)
    return time.perf_counter() - start, time.process_time() - cpu_start, result


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def write_json(result: dict[str, Any], path: str | None) -> None:
    text = json.dumps(result, indent=2)
    print(text)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n", encoding="utf-8")

"""Markdown tables from benchmark JSON files (rerank_throughput, concurrency, memory), for docs/benchmarks.md.

python benchmarks/summarize.py results/*.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def throughput_row(name: str, r: dict[str, Any]) -> str:
    spq = r.get("seconds_per_query", {})
    cells = [
        name,
        r.get("model"),
        r.get("device"),
        r.get("dtype") + (f" {r['quantization']}" if r.get("quantization") else ""),
        r.get("batch_size"),
        r.get("n_passages"),
        r.get("mean_prompt_tokens"),
        r.get("naive_pps"),
        r.get("library_pps"),
        r.get("bare_forward_pps"),
        r.get("library_uncached_pps"),
        r.get("library_question_first_pps"),
        r.get("ratio_vs_naive"),
        r.get("ratio_vs_bare"),
        r.get("ratio_question_first_vs_bare"),
        spq.get("library"),
        spq.get("library_question_first"),
        (r.get("mfu") or {}).get("bare_forward"),
        (r.get("mfu") or {}).get("library"),
    ]
    return "| " + " | ".join(fmt(c) for c in cells) + " |"


def main(paths: list[str]) -> None:
    throughput, others = [], []
    for path in paths:
        result = json.loads(Path(path).read_text(encoding="utf-8"))
        (throughput if "library_pps" in result else others).append((Path(path).stem, result))
    if throughput:
        print(
            "| run | model | device | dtype | batch | passages | prompt tokens | naive pps | library pps | bare pps "
            "| uncached pps | question-first pps | library/naive | library/bare | question-first/bare "
            "| s/query library | s/query question-first | MFU bare | MFU library |"
        )
        print("|" + "---|" * 19)
        for name, result in throughput:
            print(throughput_row(name, result))
        print()
        for name, result in throughput:
            print(
                f"- {name}: `{result['command']}` ({result['date']}, {result['machine'].get('gpu') or result['machine']['cpu']})"
            )
        print()
    for name, result in others:
        print(f"### {name}\n\n`{result.get('command')}` ({result.get('date')})\n\n```json")
        print(json.dumps({k: v for k, v in result.items() if k not in ("machine", "command", "date")}, indent=1))
        print("```\n")


if __name__ == "__main__":
    main(sys.argv[1:])

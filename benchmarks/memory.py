"""Peak resident memory of one model, of a reranker + LLM built from the same name, and of two loads.

Each case runs in a fresh Python process (peak RSS is per process) and exercises what it loaded: one
scoring call and a short generation per component. Cases:

  imports_only      torch, transformers and rankrag imported, no model (the floor)
  one_model         RankRAGModel.load(), score + generate                                   (i)
  core_twice        RankRAGModel.load() twice (the same name), score with one, generate with the other
  langchain_pair    rankrag_langchain RankRAGReranker() + RankRAGLLM()                    (ii)
  llamaindex_pair   rankrag_llamaindex RankRAGReranker() + RankRAGLLM()                   (ii)
  two_loads         RankRAGModel.load(); clear_registry(); RankRAGModel.load() again: two copies (iii)

    python benchmarks/memory.py [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402

QUESTION = "What is the capital of Japan?"
PASSAGES = ["Tokyo is the capital of Japan.", "Paris is the capital of France.", "Bananas are yellow."]
CASES = ("imports_only", "one_model", "core_twice", "langchain_pair", "llamaindex_pair", "two_loads")


def exercise_core(scorer: Any, generator: Any) -> bool:
    scorer.score(QUESTION, PASSAGES)
    generator.generate(QUESTION, PASSAGES[:1], max_new_tokens=8)
    return scorer is generator


def run_case(case: str) -> dict[str, Any]:
    import torch
    import transformers  # noqa: F401

    from rankrag import RankRAGModel, clear_registry

    shared: bool | None = None
    if case == "one_model":
        model = RankRAGModel.load()
        shared = exercise_core(model, model)
    elif case == "core_twice":
        shared = exercise_core(RankRAGModel.load(), RankRAGModel.load())
    elif case == "two_loads":
        first = RankRAGModel.load()
        clear_registry()
        second = RankRAGModel.load()
        shared = exercise_core(first, second)
    elif case == "langchain_pair":
        from langchain_core.documents import Document

        from rankrag_langchain import RankRAGLLM, RankRAGReranker

        reranker, llm = RankRAGReranker(top_n=2), RankRAGLLM(max_tokens=8)
        reranker.compress_documents([Document(page_content=p) for p in PASSAGES], QUESTION)
        llm.invoke(QUESTION)
        shared = reranker.rankrag_model is llm.rankrag_model
    elif case == "llamaindex_pair":
        from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

        from rankrag_llamaindex import RankRAGLLM, RankRAGReranker

        reranker, llm = RankRAGReranker(top_n=2), RankRAGLLM(max_new_tokens=8)
        reranker.postprocess_nodes([NodeWithScore(node=TextNode(text=p)) for p in PASSAGES], QueryBundle(QUESTION))
        llm.complete(QUESTION)
        shared = reranker.model is llm.model
    elif case != "imports_only":
        raise SystemExit(f"unknown case {case!r}")
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    result = {"case": case, "peak_rss_mb": round(peak_kib / 1024, 1), "same_model_object": shared}
    if torch.cuda.is_available():
        result["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return result


def measure(case: str) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--case", case], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        return {"case": case, "error": completed.stderr.strip().splitlines()[-1:] or ["failed"]}
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main(argv: Sequence[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(args.case)))
        return {}
    measure("one_model")  # materialises the embedded GGUF once, outside the measured runs
    cases = {case: measure(case) for case in CASES}
    peak = {case: r.get("peak_rss_mb") for case, r in cases.items()}
    cuda = {case: r["peak_cuda_mb"] for case, r in cases.items() if "peak_cuda_mb" in r}

    def ratio(case: str) -> float | None:
        return round(peak[case] / peak["one_model"], 3) if peak.get(case) and peak.get("one_model") else None

    result: dict[str, Any] = {
        "peak_rss_mb": peak,
        "ratio_langchain_pair_vs_one": ratio("langchain_pair"),
        "ratio_llamaindex_pair_vs_one": ratio("llamaindex_pair"),
        "ratio_core_twice_vs_one": ratio("core_twice"),
        "ratio_two_loads_vs_one": ratio("two_loads"),
        "peak_cuda_mb": cuda or None,
        "same_model_object": {case: r.get("same_model_object") for case, r in cases.items()},
        "errors": {case: r["error"] for case, r in cases.items() if "error" in r},
        "machine": _common.machine(),
        **_common.stamp(["benchmarks/memory.py", *argv]),
    }
    _common.write_json(result, args.json)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])

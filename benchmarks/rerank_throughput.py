"""Reranking throughput, measured in ONE run over the same passages and the same token ids:

  naive    one passage per forward pass through the full model, logits over the whole vocabulary at
           every position (what ``model(**inputs).logits[0, -1]`` in a loop costs);
  library  ``RankRAGModel.score`` as users call it (default options: shared-prefix cache on);
  bare     a batched forward of the decoder alone over the full prompts, keeping only the last hidden
           state, in the same length-sorted batches: the practical ceiling without prefix reuse.

Also measured: the library with the prefix cache off, with the question-first prompt (whose shared
prefix includes the question), and in bfloat16 (float32 answer rows) where the CPU has bfloat16 matrix
instructions. The machine's own limit is measured in the same run: the sustained rate of a large float32
(and bfloat16) matrix product, before and after the rounds; ``fraction_of_peak`` is the library's effective
rate (the FLOPs of every full prompt it scores, per second) over that float32 rate. Methods run in rounds, rotated each round; pps come from each method's
median time, ratios are the median of the per-round ratios (the CPU may be shared with other work).

    python benchmarks/rerank_throughput.py [--quick] [--json FILE]
    python benchmarks/rerank_throughput.py --device cuda --dtype bfloat16 [--quantization 4bit]
    python benchmarks/rerank_throughput.py --device cuda --random-llama 8b --passage-tokens 200
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402
import torch  # noqa: E402

from rankrag import PromptTemplates, RankRAGModel  # noqa: E402
from rankrag.model.batching import length_sorted_batches  # noqa: E402
from rankrag.model.ranking_prompts import RankingEncoder, split_prompts  # noqa: E402

# Dense bf16 tensor-core peaks (TFLOP/s, no sparsity) for model-FLOPs utilisation; --peak-tflops overrides.
GPU_PEAK_TFLOPS = {
    "H200": 989.4,
    "H100 NVL": 835.0,
    "H100 PCIe": 756.0,
    "H100": 989.4,
    "A100": 312.0,
    "L40S": 362.1,
    "L4": 121.0,
    "A10G": 125.0,
    "A10": 125.0,
    "RTX 4090": 165.2,
}

RANDOM_LLAMA_SHAPES: dict[str, dict[str, Any]] = {
    # Llama-3-8B: 32 layers, hidden 4096, GQA 32/8 heads, MLP 14336, 128k vocabulary.
    "8b": dict(
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        vocab_size=128256,
        rope_theta=500000.0,
        max_position_embeddings=8192,
    ),
    # For checking this script on a CPU; not a benchmark.
    "tiny": dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=49152,
        max_position_embeddings=4096,
    ),
}


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20 passages, one round (a smoke check, < 3 min)")
    parser.add_argument("--json", metavar="FILE", help="also write the result to FILE")
    parser.add_argument("--data-dir", default=None, help="shared data directory (default $RANKRAG_DATA_DIR)")
    parser.add_argument(
        "--n-passages", type=int, default=None, help="passages per query (default 100; 20 with --quick)"
    )
    parser.add_argument("--passage-tokens", type=int, default=150, help="about how long each passage is")
    parser.add_argument("--rounds", type=int, default=None, help="measurement rounds (default 3; 1 with --quick)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--model", default=None, help="model source (default: the embedded SmolLM2-135M)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--quantization", default=None, choices=[None, "4bit", "8bit"])
    parser.add_argument(
        "--random-llama",
        choices=sorted(RANDOM_LLAMA_SHAPES),
        help="randomly initialised Llama of this shape (speed only)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument(
        "--peak-tflops", type=float, default=None, help="peak dense TFLOP/s for MFU (GPU default from its name)"
    )
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["naive", "question_first", "uncached", "bf16"],
        help="methods to leave out",
    )
    args = parser.parse_args(argv)
    args.n_passages = args.n_passages or (20 if args.quick else 100)
    args.rounds = args.rounds or (1 if args.quick else 3)
    return args


def load_model(args: argparse.Namespace) -> RankRAGModel:
    if args.random_llama is None:
        return RankRAGModel.load(args.model, dtype=args.dtype, quantization=args.quantization, device=args.device)
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    from rankrag.model import loading

    device = loading.resolve_device(args.device)
    dtype = loading.DTYPES[loading.resolve_dtype(args.dtype, device)]
    tokenizer = AutoTokenizer.from_pretrained(loading.materialize_gguf(*loading.resolve_source(None)))
    config = LlamaConfig(
        **RANDOM_LLAMA_SHAPES[args.random_llama],
        tie_word_embeddings=False,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return RankRAGModel.load((model, tokenizer))


# ------------------------------------------------------------------------------------------ methods
def naive_scores(handle: RankRAGModel, encoded: Sequence[Sequence[int]]) -> list[float]:
    model, device = handle.model, handle.device
    true_id, false_id = handle._answer_ids
    scores = []
    with torch.no_grad():
        for ids in encoded:
            logits = model(input_ids=torch.tensor([list(ids)], device=device)).logits  # [1, length, vocab]
            probabilities = torch.softmax(logits[0, -1].float(), dim=-1)
            true, false = probabilities[true_id], probabilities[false_id]
            scores.append(float(true / (true + false)))
    return scores


def bare_forward(handle: RankRAGModel, encoded: Sequence[Sequence[int]], batch_size: int) -> list[torch.Tensor]:
    decoder, device = handle.model.get_decoder(), handle.device
    pad_id = int(handle.tokenizer.pad_token_id)
    states = []
    with torch.inference_mode():
        for indices in length_sorted_batches(encoded, batch_size):
            lengths = torch.tensor([len(encoded[i]) for i in indices], device=device)
            input_ids = torch.full((len(indices), int(lengths.max())), pad_id, dtype=torch.long, device=device)
            for row, i in enumerate(indices):
                input_ids[row, : len(encoded[i])] = torch.tensor(encoded[i], device=device)
            mask = (torch.arange(input_ids.shape[1], device=device)[None, :] < lengths[:, None]).long()
            hidden = decoder(input_ids=input_ids, attention_mask=mask, use_cache=False).last_hidden_state
            states.append(hidden[torch.arange(len(indices), device=device), lengths - 1])
    return states


# ---------------------------------------------------------------------------------------- FLOPs/MFU
def flops_per_token_and_context(config: Any) -> tuple[float, float]:
    """(FLOPs per token through the layers' weights, attention FLOPs per (query, key) pair), Llama-shaped."""
    hidden = config.hidden_size
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    per_layer = hidden * heads * head_dim * 2 + hidden * kv_heads * head_dim * 2 + 3 * hidden * config.intermediate_size
    layers = config.num_hidden_layers
    return 2.0 * per_layer * layers, 4.0 * layers * heads * head_dim


def forward_flops(config: Any, rows: Sequence[tuple[int, int]]) -> float:
    """FLOPs of decoder passes; each row is (tokens already cached, new tokens), causal attention."""
    per_token, per_pair = flops_per_token_and_context(config)
    return sum(per_token * new + per_pair * (cached * new + new * (new + 1) / 2) for cached, new in rows)


def peak_tflops(args: argparse.Namespace) -> float | None:
    if args.peak_tflops:
        return args.peak_tflops
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(0)
    return next((peak for key, peak in GPU_PEAK_TFLOPS.items() if key in name), None)


def bf16_variant(args: argparse.Namespace, handle: RankRAGModel, options: Any) -> RankRAGModel | None:
    """The same model loaded in bfloat16, when the float32 run is on a CPU with bfloat16 instructions."""
    if "bf16" in args.skip or handle.model.dtype != torch.float32 or str(handle.device) != "cpu":
        return None
    if not _common.cpu_has_bf16() or args.random_llama is not None or args.quantization is not None:
        return None
    return RankRAGModel.load(args.model, dtype="bfloat16", device="cpu").with_options(scoring_options=options)


# --------------------------------------------------------------------------------------------- main
def main(argv: Sequence[str]) -> dict[str, Any]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    machine = _common.machine()
    handle = load_model(args)
    options = replace(
        handle.scoring_options, batch_size=args.batch_size, max_passage_tokens=max(384, args.passage_tokens + 16)
    )
    handle = handle.with_options(scoring_options=options)
    data_dir = Path(args.data_dir) if args.data_dir else _common.default_data_dir()
    query, passages = _common.select_passages(
        handle.tokenizer, _common.read_trec(data_dir), args.n_passages, args.passage_tokens
    )
    uncached = handle.with_options(scoring_options=replace(options, prefix_cache=False))
    question_first = handle.with_options(templates=PromptTemplates(question_first=True))
    device = handle.device

    methods: dict[str, Callable[[list[str], list[list[int]]], Any]] = {
        "library": lambda texts, _ids: handle.score(query, texts),
        "bare_forward": lambda _texts, ids: bare_forward(handle, ids, args.batch_size),
    }
    if "naive" not in args.skip:
        methods["naive"] = lambda _texts, ids: naive_scores(handle, ids)
    if "uncached" not in args.skip:
        methods["library_uncached"] = lambda texts, _ids: uncached.score(query, texts)
    if "question_first" not in args.skip:
        methods["library_question_first"] = lambda texts, _ids: question_first.score(query, texts)
    bf16_handle = bf16_variant(args, handle, options)
    if bf16_handle is not None:
        methods["library_bf16"] = lambda texts, _ids: bf16_handle.score(query, texts)

    peak_dtypes = {"float32": torch.float32, **({"bfloat16": torch.bfloat16} if bf16_handle is not None else {})}
    peaks_before = {name: _common.matmul_gflops(dtype, device) for name, dtype in peak_dtypes.items()}

    encoded = handle.encode_ranking(query, passages)
    for run in methods.values():  # warm-up: kernels, allocator, first-call caches
        run(passages[:3], encoded[:3])

    names = list(methods)
    times: dict[str, list[float]] = {name: [] for name in names}
    cpu_times: dict[str, list[float]] = {name: [] for name in names}
    outputs: dict[str, Any] = {}
    for round_number in range(args.rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            seconds, cpu_seconds, outputs[name] = _common.timed(lambda: methods[name](passages, encoded), device)
            times[name].append(seconds)
            cpu_times[name].append(cpu_seconds)
            print(
                f"round {round_number + 1}/{args.rounds} {name}: {seconds:.2f} s "
                f"({len(passages) / seconds:.2f} passages/s)",
                file=sys.stderr,
                flush=True,
            )

    peaks_after = {name: _common.matmul_gflops(dtype, device) for name, dtype in peak_dtypes.items()}
    matmul_peak = {name: max(peaks_before[name], peaks_after[name]) for name in peak_dtypes}

    def pps(name: str) -> float | None:
        return round(len(passages) / _common.median(times[name]), 3) if name in times else None

    def ratio(numerator: str, denominator: str, measured: dict[str, list[float]] = times) -> float | None:
        if numerator not in measured or denominator not in measured:
            return None
        return round(_common.median([d / n for n, d in zip(measured[numerator], measured[denominator])]), 3)

    library_scores = outputs["library"]
    encoder = RankingEncoder(handle.tokenizer, handle.templates, options)
    prompts = split_prompts(encoder, query, passages)
    suffix_tokens = len(encoder.prefix_and_suffix(query)[1])
    qf_prompts = split_prompts(RankingEncoder(handle.tokenizer, question_first.templates, options), query, passages)
    config = handle.model.config
    full_flops = forward_flops(config, [(0, len(ids)) for ids in encoded])
    cached_flops = forward_flops(
        config, [(0, len(prompts.prefix))] + [(len(prompts.prefix), len(t)) for t in prompts.tails]
    )
    qf_flops = forward_flops(
        config, [(0, len(qf_prompts.prefix))] + [(len(qf_prompts.prefix), len(t)) for t in qf_prompts.tails]
    )
    peak = peak_tflops(args)

    result: dict[str, Any] = {
        "naive_pps": pps("naive"),
        "library_pps": pps("library"),
        "bare_forward_pps": pps("bare_forward"),
        "ratio_vs_naive": ratio("library", "naive"),
        "ratio_vs_bare": ratio("library", "bare_forward"),
        "device": str(device),
        "dtype": str(handle.model.dtype).removeprefix("torch."),
        "n_passages": len(passages),
        "mean_prompt_tokens": round(sum(map(len, encoded)) / len(encoded), 1),
        # beyond the required keys
        "quantization": args.quantization,
        "model": handle.name if args.random_llama is None else f"random Llama ({args.random_llama} shape)",
        "library_uncached_pps": pps("library_uncached"),
        "ratio_bare_vs_naive": ratio("bare_forward", "naive"),
        "ratio_uncached_vs_bare": ratio("library_uncached", "bare_forward"),
        "library_question_first_pps": pps("library_question_first"),
        "ratio_question_first_vs_bare": ratio("library_question_first", "bare_forward"),
        "ratio_question_first_vs_naive": ratio("library_question_first", "naive"),
        "shared_prefix_tokens": len(prompts.prefix),
        "shared_prefix_tokens_question_first": len(qf_prompts.prefix),
        "mean_passage_tokens": round(sum(len(t) for t in prompts.tails) / len(prompts.tails) - suffix_tokens, 1),
        "seconds_per_query": {name: round(_common.median(t) * 100 / len(passages), 3) for name, t in times.items()},
        "seconds_per_query_note": "median time scaled to 100 passages per query",
        "max_abs_diff_library_vs_naive": round(max(abs(a - b) for a, b in zip(library_scores, outputs["naive"])), 8)
        if "naive" in outputs
        else None,
        "max_abs_diff_uncached_vs_library": round(
            max(abs(a - b) for a, b in zip(library_scores, outputs["library_uncached"])), 8
        )
        if "library_uncached" in outputs
        else None,
        "rounds": args.rounds,
        "times_s": {name: [round(t, 3) for t in values] for name, values in times.items()},
        "cpu_times_s": {name: [round(t, 3) for t in values] for name, values in cpu_times.items()},
        "cpu_ratio_vs_naive": ratio("library", "naive", cpu_times),
        "cpu_ratio_vs_bare": ratio("library", "bare_forward", cpu_times),
        "cpu_ratio_question_first_vs_bare": ratio("library_question_first", "bare_forward", cpu_times),
        "cpu_ratio_bare_vs_naive": ratio("bare_forward", "naive", cpu_times),
        "batch_size": args.batch_size,
        "query": query,
        "machine": {**machine, "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
        **_common.stamp(["benchmarks/rerank_throughput.py", *argv]),
    }
    computed = {
        "bare_forward": full_flops,
        "library": cached_flops,
        "library_uncached": full_flops,
        "library_question_first": qf_flops,
    }
    result["tflop_per_query"] = {
        "full_prompts": round(full_flops / 1e12, 4),
        "prefix_cache": round(cached_flops / 1e12, 4),
        "prefix_cache_question_first": round(qf_flops / 1e12, 4),
    }
    effective = {name: full_flops / _common.median(times[name]) / 1e9 for name in times if name != "naive"}
    result.update(
        {
            "matmul_peak_gflops": round(matmul_peak["float32"], 1),
            "library_gflops": round(effective["library"], 1),
            "fraction_of_peak": round(effective["library"] / matmul_peak["float32"], 3),
            "bf16_library_pps": pps("library_bf16"),
            "bf16_speedup": ratio("library_bf16", "library"),
            # beyond the required keys
            "library_gflops_note": "FLOPs of every full prompt scored (2 x non-embedding weights x tokens, plus causal "
            "attention) per second; the prefix cache computes fewer, so this can exceed the peak",
            "library_computed_gflops": round(cached_flops / _common.median(times["library"]) / 1e9, 1),
            "bare_forward_gflops": round(effective["bare_forward"], 1),
            "bare_forward_fraction_of_peak": round(effective["bare_forward"] / matmul_peak["float32"], 3),
            "matmul_gflops_before_after": {
                name: [round(peaks_before[name], 1), round(peaks_after[name], 1)] for name in peak_dtypes
            },
            "bf16_matmul_peak_gflops": round(matmul_peak["bfloat16"], 1) if "bfloat16" in matmul_peak else None,
            "bf16_library_gflops": round(effective["library_bf16"], 1) if "library_bf16" in effective else None,
            "bf16_fraction_of_bf16_peak": round(effective["library_bf16"] / matmul_peak["bfloat16"], 3)
            if "library_bf16" in effective
            else None,
            "bf16_max_abs_diff_vs_float32": round(
                max(abs(a - b) for a, b in zip(library_scores, outputs["library_bf16"])), 6
            )
            if "library_bf16" in outputs
            else None,
            "cpu_has_bf16": _common.cpu_has_bf16(),
        }
    )
    if peak:
        # model FLOPs actually computed (prefix once + tails for the cached paths) / time / peak
        result["peak_tflops"] = peak
        result["mfu"] = {
            name: round(computed[name] / _common.median(times[name]) / (peak * 1e12), 4)
            for name in computed
            if name in times
        }
        result["seconds_per_query_at_peak"] = {
            name: round(flops / (peak * 1e12) * 100 / len(passages), 4) for name, flops in computed.items()
        }
    _common.write_json(result, args.json)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])

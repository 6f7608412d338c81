"""Training throughput of `rankrag train`'s lean loop, today's settings against the faster levers, in one run.

Every configuration trains the same real blend examples (drawn from the default blend of the data
directory, the same rows in the same order) for the same number of optimizer steps, from the same fresh
LoRA init, and reports examples per second and the ratio to the float32, all-layer baseline:

* ``float32_all_layers``: the lean loop as it was (float32, LoRA on all 30 layers);
* ``bf16_all_layers``: bfloat16 autocast (frozen weights stored in bfloat16, as ``rankrag train`` does);
* ``float32_top_N``: LoRA on the top N layers only (the lower layers run without a graph);
* ``bf16_top_N_autocast_only``: both, with the frozen weights kept in float32 (autocast casts them every call);
* ``bf16_top_N``: both, the frozen weights stored in bfloat16 for the run (what ``rankrag train`` does).

    python benchmarks/training_throughput.py [--data-dir DIR] [--steps 6] [--rounds 3] [--top-layers 16] [--output FILE]

With ``--rounds N`` the configurations run in turn N times (each time from a fresh load and init) and their
timed steps are summed, so a machine that speeds up or slows down during the run weighs on all of them alike.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import default_data_dir, machine, stamp  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--steps", type=int, default=6, help="timed optimizer steps per configuration")
    parser.add_argument(
        "--rounds", type=int, default=1, help="rotate through the configurations this many times (machine drift)"
    )
    parser.add_argument("--warmup-steps", type=int, default=1, help="untimed steps first (allocator, kernels)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--top-layers", default="6", help="LoRA depth(s) of the *_top configurations, e.g. 16,10")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--configs", default="float32_all_layers,bf16_all_layers,float32_top,bf16_top_autocast_only,bf16_top"
    )
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()

    import torch
    from transformers.utils import logging as transformers_logging

    from rankrag.train.blend import BlendConfig, build_blend
    from rankrag.train.lean_loop import LoopSettings, run_loop
    from rankrag.train.trainer import ExampleEncoder, TrainConfig, encode_blend, load_trainable

    transformers_logging.set_verbosity_error()
    if args.threads:
        torch.set_num_threads(args.threads)
    data_dir = args.data_dir or default_data_dir()
    examples = build_blend(data_dir, BlendConfig(size=2000))
    rows_needed = (args.steps + args.warmup_steps + 1) * args.batch_size
    depths = [int(depth) for depth in str(args.top_layers).split(",")]
    # label: (precision, LoRA depth or None for all layers, frozen weights stored in bfloat16)
    configs: dict[str, tuple[str, int | None, bool]] = {
        "float32_all_layers": ("float32", None, False),
        "bf16_all_layers": ("bfloat16", None, True),
    }
    for depth in depths:
        configs[f"float32_top_{depth}"] = ("float32", depth, False)
        configs[f"bf16_top_{depth}_autocast_only"] = ("bfloat16", depth, False)
        configs[f"bf16_top_{depth}"] = ("bfloat16", depth, True)
    chosen = [
        name.replace("_top", f"_top_{depth}") if "_top" in name else name
        for name in args.configs.split(",")
        for depth in (depths if "_top" in name else [None])
    ]
    timed_seconds: dict[str, float] = {label: 0.0 for label in chosen}
    rows = None
    for label in [label for _ in range(args.rounds) for label in chosen]:
        precision, layers, bf16_storage = configs[label]
        with tempfile.TemporaryDirectory() as scratch:
            config = TrainConfig(blend="-", output=scratch, lora_layers=layers, precision=precision)
            torch.manual_seed(0)
            model, tokenizer = load_trainable(config)
            if rows is None:
                encoder = ExampleEncoder(tokenizer)
                rows, _ = encode_blend(encoder, examples, config.max_length)
                rows = rows[:rows_needed]
            timings: list[float] = []

            def on_step(step: int, loss: float) -> None:
                timings.append(time.perf_counter())

            settings = LoopSettings(
                steps=args.steps + args.warmup_steps + 1,
                batch_size=args.batch_size,
                gradient_accumulation=1,
                learning_rate=5e-4,
                warmup=0.0,
                scheduler="constant",
                weight_decay=0.0,
                save_steps=10**9,
                logging_steps=10**9,
                seed=1,
                autocast_bf16=precision == "bfloat16",
                bf16_frozen_weights=bf16_storage,
            )
            start = time.perf_counter()
            run_loop(
                model,
                rows,
                int(tokenizer.pad_token_id),
                settings,
                Path(scratch),
                Path(scratch) / "log.jsonl",
                progress=False,
                on_step=on_step,
            )
            # The last step also writes the final checkpoint: it is run but not timed.
            timed_seconds[label] += timings[-2] - (timings[args.warmup_steps - 1] if args.warmup_steps else start)
            print(label, round(timed_seconds[label], 1), flush=True)
            del model
    results: dict[str, dict[str, float]] = {}
    for label, seconds in timed_seconds.items():
        per_step = seconds / (args.steps * args.rounds)
        results[label] = {
            "seconds_per_step": round(per_step, 3),
            "examples_per_second": round(args.batch_size / per_step, 3),
        }
    baseline = results.get("float32_all_layers")
    if baseline:
        for value in results.values():
            value["speedup"] = round(value["examples_per_second"] / baseline["examples_per_second"], 2)
    mean_tokens = sum(len(r["input_ids"]) for r in rows or []) / max(len(rows or []), 1)
    report = {
        "benchmark": "training_throughput",
        "command": " ".join([sys.executable, *sys.argv]),
        "machine": machine(),
        **stamp(["benchmarks/training_throughput.py", *sys.argv[1:]]),
        "steps": args.steps,
        "rounds": args.rounds,
        "batch_size": args.batch_size,
        "mean_tokens_per_example": round(mean_tokens, 1),
        "results": results,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()

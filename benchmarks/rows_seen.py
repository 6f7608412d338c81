"""What a lean `rankrag train` run trained on: rows, ranking rows and tokens of its first N steps, per loss.

Replays the run's batch stream (same blend, encoding, seed and batch size, read from the run's
``training_args.json``) without training, for the pointwise losses (``lm``, ``binary``: fixed batches) and
for ``listwise`` (a ranking query's rows share a batch, so a batch can hold more than ``--batch-size``
rows). This is how equal-compute runs of different objectives are compared by examples seen.

    python benchmarks/rows_seen.py runs/obj-listwise/training_args.json [--steps N]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("training_args", type=Path, help="a run's training_args.json")
    parser.add_argument("--steps", type=int, default=None, help="steps to replay (default: the run's --steps)")
    args = parser.parse_args()

    from rankrag.train.blend import read_blend
    from rankrag.train.lean_loop import batch_stream, query_units
    from rankrag.train.trainer import ExampleEncoder, TrainConfig, encode_blend, load_trainable

    saved = json.loads(args.training_args.read_text())
    config = TrainConfig(**{f.name: saved[f.name] for f in fields(TrainConfig) if f.name in saved})
    model, tokenizer = load_trainable(config)
    encoder = ExampleEncoder(
        tokenizer, max_passage_tokens=config.max_passage_tokens, max_context_tokens=config.max_context_tokens
    )
    rows, _ = encode_blend(encoder, read_blend(config.blend), config.max_length)
    lengths = [len(r["input_ids"]) for r in rows]
    steps = args.steps or config.steps
    report: dict[str, object] = {"training_args": str(args.training_args), "examples": len(rows), "steps": steps}
    for loss, units in (("lm_or_binary", None), ("listwise", query_units(rows))):
        stream = batch_stream(lengths, config.batch_size, config.seed, units=units)
        batches = [next(stream) for _ in range(steps * config.gradient_accumulation)]
        report[loss] = {
            "rows": sum(map(len, batches)),
            "ranking_rows": sum(1 for batch in batches for i in batch if "query" in rows[i]),
            "tokens": sum(lengths[i] for batch in batches for i in batch),
            "largest_batch": max(map(len, batches)),
        }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

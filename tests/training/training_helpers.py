"""Shared by the training tests: a tiny inline blend and a fast TrainConfig for the tiny random Llama."""

from __future__ import annotations

from pathlib import Path

from rankrag.train.blend import BlendExample
from rankrag.train.trainer import TrainConfig

RANKING_EXAMPLES = [
    BlendExample(
        "context_ranking", "s", "g1", "what is the capital of france", ("Paris is the capital of France.",), "True"
    ),
    BlendExample("context_ranking", "s", "g1", "what is the capital of france", ("Bananas are yellow.",), "False"),
    BlendExample("context_ranking", "s", "g2", "who wrote hamlet", ("Hamlet is a play by Shakespeare.",), "True"),
    BlendExample("context_ranking", "s", "g2", "who wrote hamlet", ("The Nile is long.",), "False"),
]
EXAMPLES = [
    *RANKING_EXAMPLES,
    BlendExample("context_qa", "s", "g3", "Who wrote Hamlet", ("Hamlet is a play by Shakespeare.",), "Shakespeare"),
]


def fast_config(tiny_model_dir: Path, output: Path, **changes: object) -> TrainConfig:
    """Two steps of batch 2, a checkpoint and a log line every step, one thread."""
    settings: dict[str, object] = dict(
        blend="inline",
        output=str(output),
        base=str(tiny_model_dir),
        steps=2,
        batch_size=2,
        save_steps=1,
        logging_steps=1,
        learning_rate=1e-2,
        warmup=0.0,
        lora_r=4,
        lora_alpha=8,
        threads=1,
    )
    settings.update(changes)
    return TrainConfig(**settings)  # type: ignore[arg-type]  # the dict mixes the fields' types

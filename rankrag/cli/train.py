"""`rankrag blend` and `rankrag train`: build the RankRAG instruction blend and LoRA-tune a model on it."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from rankrag.cli.common import command_errors, threads_option

DATA_DIR_HELP = "shared-data directory (default: $RANKRAG_DATA_DIR)"
DEFAULT_LORA_LAYERS = 6  # rankrag.train.trainer.DEFAULT_LORA_LAYERS
DEFAULT_BLEND_SIZE = 24000  # rankrag.train.blend.DEFAULT_BLEND_SIZE (not imported: `--help` stays light)


def _parse_weights(values: list[str] | None, option: str) -> dict[str, float]:
    weights = {}
    for value in values or []:
        name, sep, number = value.partition("=")
        try:
            if not sep:
                raise ValueError
            weights[name.strip()] = float(number)
        except ValueError:
            raise ValueError(f"{option} expects NAME=NUMBER, got {value!r}") from None
    return weights


def blend_command(
    output: Path = typer.Option(..., "--output", "-o", help="JSONL file to write"),
    data_dir: str | None = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
    size: int = typer.Option(
        DEFAULT_BLEND_SIZE, "--size", help="examples to draw before dedup (0: everything available)"
    ),
    seed: int = typer.Option(20240702, "--seed"),
    ratio: list[str] | None = typer.Option(
        None,
        "--ratio",
        help="task share, e.g. --ratio context_ranking=0.8 (tasks: context_ranking, context_qa, "
        "retrieval_qa, multi_ranking, no_answer_qa); unnamed tasks keep their defaults",
    ),
    source_weight: list[str] | None = typer.Option(
        None, "--source-weight", help="sampling weight of a source, e.g. --source-weight trec_dl_passage=4"
    ),
    negatives_per_positive: int = typer.Option(3, "--negatives-per-positive", help="hard negatives kept per positive"),
    user_shapes: float = typer.Option(
        0.0,
        "--user-shapes",
        help="share of QA examples rendered in the prompt shapes users send (LangChain, LlamaIndex templates, "
        "plain and multi-turn chat) instead of RankRAG's own",
    ),
    replay: int = typer.Option(
        0, "--replay", help="add N general instructions answered by the untuned base model (loads the model)"
    ),
    distill_queries: int = typer.Option(
        0,
        "--distill-queries",
        help="add the candidate lists of N ranking queries and score every context-ranking example with the "
        "teacher, for `rankrag train --ranking-loss distill`",
    ),
    distill_group_size: int = typer.Option(8, "--distill-group-size", help="candidates per distilled query"),
    teacher: str | None = typer.Option(
        None, "--teacher", help="sentence-transformers model giving the soft labels (default: the embedded MiniLM)"
    ),
) -> None:
    """Build the RankRAG stage-2 blend from the train split of a data directory (JSONL, deduplicated, seeded)."""
    from rankrag.train.blend import (
        DEFAULT_SOURCE_WEIGHTS,
        DEFAULT_TASK_RATIOS,
        BlendConfig,
        build_blend,
        summarize,
        write_blend,
    )

    with command_errors():
        config = BlendConfig(
            size=size or None,
            seed=seed,
            task_ratios={**DEFAULT_TASK_RATIOS, **_parse_weights(ratio, "--ratio")},
            source_weights={**DEFAULT_SOURCE_WEIGHTS, **_parse_weights(source_weight, "--source-weight")},
            negatives_per_positive=negatives_per_positive,
            user_shape_share=user_shapes,
            distill_queries=distill_queries,
            distill_group_size=distill_group_size,
        )
        examples = build_blend(data_dir, config)
        if distill_queries:
            from rankrag.train.blend import with_teacher_scores
            from rankrag.train.teacher import CosineTeacher

            examples = with_teacher_scores(examples, CosineTeacher(teacher).scores)
        if replay:
            from rankrag.train.replay import with_replay

            examples = with_replay(examples, data_dir, replay, seed)
        write_blend(examples, output)
    typer.echo(json.dumps({"output": str(output), "examples": len(examples), **summarize(examples)}, indent=2))


def train_command(
    output: Path = typer.Option(..., "--output", "-o", help="directory for the adapter, loss log and checkpoints"),
    blend: Path | None = typer.Option(None, "--blend", help="blend JSONL from `rankrag blend`"),
    data_dir: str | None = typer.Option(
        None, "--data-dir", help=f"build a default blend from this {DATA_DIR_HELP} when --blend is not given"
    ),
    base: str | None = typer.Option(
        None, "--base", help="base model: HF id, directory or .gguf (default: embedded SmolLM2)"
    ),
    steps: int = typer.Option(300, "--steps", help="optimizer steps"),
    batch_size: int = typer.Option(8, "--batch-size"),
    gradient_accumulation: int = typer.Option(1, "--gradient-accumulation"),
    learning_rate: float = typer.Option(5e-4, "--lr", "--learning-rate"),
    warmup: float = typer.Option(0.05, "--warmup", help="warmup as a fraction of the steps"),
    scheduler: str = typer.Option("cosine", "--scheduler", help="learning-rate schedule (transformers names)"),
    lora_r: int = typer.Option(16, "--lora-r"),
    lora_alpha: int = typer.Option(32, "--lora-alpha"),
    lora_dropout: float = typer.Option(0.0, "--lora-dropout"),
    max_passage_tokens: int = typer.Option(160, "--max-passage-tokens", help="passage cut in ranking examples"),
    max_context_tokens: int = typer.Option(128, "--max-context-tokens", help="per-passage cut in QA examples"),
    save_steps: int = typer.Option(50, "--save-steps", help="checkpoint every N steps"),
    logging_steps: int = typer.Option(5, "--logging-steps"),
    seed: int = typer.Option(20240702, "--seed"),
    quantization: str | None = typer.Option(None, "--quantization", help="'4bit' for QLoRA (CUDA only)"),
    threads: int | None = threads_option("torch CPU threads"),
    resume: bool = typer.Option(False, "--resume", help="continue from the latest checkpoint under OUTPUT"),
    limit: int | None = typer.Option(None, "--limit", help="use only the first N blend examples"),
    max_batch_tokens: int = typer.Option(
        1536,
        "--max-batch-tokens",
        help="lean engine: split a batch so no piece exceeds this many padded tokens "
        "(bounds memory; the gradient is the same)",
    ),
    time_budget: float | None = typer.Option(
        None,
        "--time-budget-minutes",
        help="lean engine: stop after this much training time; the LR schedule "
        "follows time or steps, whichever is further along",
    ),
    engine: str = typer.Option("auto", "--engine", help="lean (own loop, CPU), trl (SFTTrainer) or auto (trl on CUDA)"),
    precision: str = typer.Option(
        "auto",
        "--precision",
        help="lean engine: bfloat16 autocast, float32, or auto (bfloat16 where the CPU/GPU computes it natively)",
    ),
    lora_layers: int | None = typer.Option(
        DEFAULT_LORA_LAYERS,
        "--lora-layers",
        help="LoRA on the top N decoder layers only (0: all layers); the layers below run without gradients",
    ),
    init_adapter: Path | None = typer.Option(
        None, "--init-adapter", help="warm start: continue training this adapter directory (its LoRA settings win)"
    ),
    ranking_loss: str = typer.Option(
        "lm",
        "--ranking-loss",
        help="lean engine: loss of a ranking answer. lm (the paper's SFT, over the vocabulary), binary "
        "(softmax over the True/False tokens only, the score read at inference) or listwise (lm plus, per query, "
        "a softmax of each positive's logit(True) - logit(False) against its negatives') or distill (listwise plus, "
        "per query, KL from the teacher's softmax over cosines to the softmax over margins; needs a blend built "
        "with --distill-queries)",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """LoRA-tune a model on the RankRAG blend (loss on the assistant's tokens only)."""
    from rankrag.train.blend import BlendConfig, build_blend, read_blend, write_blend
    from rankrag.train.trainer import TrainConfig, plot_loss, train

    with command_errors():
        if blend is None and data_dir is None:
            import os

            if not os.environ.get("RANKRAG_DATA_DIR"):
                raise ValueError("give --blend FILE or --data-dir DIR (or set RANKRAG_DATA_DIR)")
        if blend is None:
            examples = build_blend(data_dir, BlendConfig())
            blend = write_blend(examples, output / "blend.jsonl")
        else:
            examples = read_blend(blend)
        config = TrainConfig(
            blend=str(blend),
            output=str(output),
            base=base,
            steps=steps,
            batch_size=batch_size,
            gradient_accumulation=gradient_accumulation,
            learning_rate=learning_rate,
            warmup=warmup,
            scheduler=scheduler,
            lora_r=lora_r,
            lora_alpha=lora_alpha,
            lora_dropout=lora_dropout,
            max_passage_tokens=max_passage_tokens,
            max_context_tokens=max_context_tokens,
            save_steps=save_steps,
            logging_steps=logging_steps,
            seed=seed,
            quantization=quantization,
            threads=threads,
            resume=resume,
            limit=limit,
            engine=engine,
            max_batch_tokens=max_batch_tokens,
            time_budget_minutes=time_budget,
            precision=precision,
            lora_layers=lora_layers or None,
            init_adapter=str(init_adapter) if init_adapter is not None else None,
            ranking_loss=ranking_loss,
        )
        result = train(config, examples, progress=progress)
        if (output / "loss_log.jsonl").is_file():
            plot_loss(output / "loss_log.jsonl", output / "training_loss.png")
    typer.echo(
        json.dumps(
            {
                "adapter": str(result.adapter_dir),
                "steps": result.steps,
                "wall_seconds": round(result.wall_seconds, 1),
                "final_loss": result.final_loss,
                "examples": result.examples,
                "dropped": result.dropped,
            },
            indent=2,
        )
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the top-level app."""
    app.command("blend")(blend_command)
    app.command("train")(train_command)

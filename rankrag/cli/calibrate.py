"""`rankrag calibrate`: fit a model's hybrid weights and fusion weight on the calib split and store them with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from rankrag.cli.common import (
    ADAPTER_HELP,
    DATA_DIR_HELP,
    DEVICE_HELP,
    MODEL_HELP,
    PROGRESS_HELP,
    check_limit,
    command_errors,
    load_model,
)


def calibrate_command(
    dataset: list[str] = typer.Option(
        ..., "--dataset", help="Reranking set(s) to calibrate on: trec_dl_passage, scifact (repeat or comma-separate)."
    ),
    data_dir: Path | None = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
    model: str | None = typer.Option(None, "--model", help=MODEL_HELP),
    adapter: str = typer.Option("default", "--adapter", help=ADAPTER_HELP),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    candidates: list[str] = typer.Option(
        ["100"],
        "--candidates",
        "--top-n",
        help="First-stage candidates reranked per query (the paper's N; --top-n is the old name): one count for "
        "every set, or SET=N per set (repeat or comma-separate), e.g. trec_dl_passage=100,scifact=30.",
    ),
    step: float = typer.Option(0.05, "--step", help="Grid step for alpha between 0 and 1."),
    limit: int | None = typer.Option(None, "--limit", help="Use only the first N calib queries of each set."),
    output: Path | None = typer.Option(
        None,
        "--output",
        help="Write the calibration to this file instead of beside the adapter/model (or the user cache).",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help=PROGRESS_HELP),
) -> None:
    """Fit the hybrid weights (LLM, dense, first stage, and the cascade) per kind of first stage, and the fusion
    weight alpha (0 retriever .. 1 LLM), by nDCG@10 on the calib split, and store them.

    `RankRAGModel.load()` of the same model and adapter then uses them by default.
    """
    with command_errors():
        from rankrag.eval.calibration import calibrate, store_calibration

        names = [name.strip() for value in dataset for name in value.split(",") if name.strip()]
        check_limit(limit)
        depth = parse_candidates(candidates, names)
        loaded = load_model(model, adapter, device)
        record = calibrate(loaded, data_dir, names, limit=limit, candidates=depth, step=step, progress=progress)
        written = store_calibration(loaded, record, output)
        typer.echo(_table(record))
        typer.echo(
            f"alpha = {record['alpha']:.2f} (nDCG@10 {record['chosen ndcg@10']:.4f}; first stage "
            f"{record['first_stage ndcg@10']:.4f}, LLM only {record['llm_only ndcg@10']:.4f}) on "
            f"{sum(record['n_queries'].values())} calib queries; wrote {written}"
        )
        for kind, weights in record.get("hybrid", {}).items():
            scores = record["hybrid ndcg@10"][kind]
            typer.echo(
                f"hybrid, {kind} first stage: llm {weights['llm']:.1f} dense {weights['dense']:.1f} first stage "
                f"{weights['first_stage']:.1f} cascade {weights['cascade']} (nDCG@10 {scores['cascade']:.4f}; all "
                f"scored {scores['all scored']:.4f}, first stage {scores['first_stage']:.4f})"
            )
        for kind, models in record.get("relevance", {}).items():
            full = models["full"]
            terms = " ".join(f"{name} {weight:+.2f}" for name, weight in full["weights"].items())
            typer.echo(f"relevance, {kind} first stage: P(relevant) = sigmoid({full['bias']:+.2f} {terms})")


def parse_candidates(values: list[str], names: list[str]) -> dict[str, int]:
    """``--candidates`` as ``{set: N}``: ``SET=N`` sets one, a bare count the others (100 when none is given)."""
    from rankrag.eval.calibration import candidates_per_dataset

    everywhere = 100
    per_set: dict[str, int] = {}
    for item in (part.strip() for value in values for part in value.split(",")):
        if not item:
            continue
        name, _, count = item.rpartition("=")
        try:
            number = int(count)
        except ValueError:
            raise ValueError(f"--candidates takes N or SET=N with a whole number N, got {item!r}") from None
        if name:
            per_set[name.strip()] = number
        else:
            everywhere = number
    unknown = [name for name in per_set if name not in names]
    if unknown:
        raise ValueError(f"--candidates names {unknown}, which are not among the --dataset sets {names}")
    return candidates_per_dataset({name: per_set.get(name, everywhere) for name in names}, names)


def _table(record: dict[str, Any]) -> str:
    per_dataset: dict[str, dict[str, float]] = record["ndcg@10 per alpha per dataset"]
    overall: dict[str, float] = record["ndcg@10 per alpha"]
    names = list(per_dataset)
    lines = ["alpha  mean    " + "  ".join(names)]
    for key, value in overall.items():
        lines.append(f"{key}   {value:.4f}  " + "  ".join(f"{per_dataset[n][key]:.4f}".ljust(len(n)) for n in names))
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    """Add `rankrag calibrate` to the top-level app."""
    app.command("calibrate")(calibrate_command)

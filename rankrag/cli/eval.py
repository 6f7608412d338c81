"""`rankrag eval rerank` and `rankrag eval qa`: RankRAG against baselines on data in the shared layout.

Heavy libraries load inside the commands, so `--help` and input errors stay fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from rankrag.cli.common import (
    ADAPTER_HELP,
    ANSWERER_ADAPTER_HELP,
    DATA_DIR_HELP,
    DEVICE_HELP,
    LIMIT_HELP,
    MODEL_HELP,
    PROGRESS_HELP,
    SPLIT_HELP,
    candidates_option,
    check_limit,
    command_errors,
    load_model,
)

if TYPE_CHECKING:
    from rankrag.data.splits import Split

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)


def split_option(split: str) -> Split | None:
    """``all`` -> None (every query), else the split name (checked by the data readers)."""
    from rankrag.data.splits import SPLITS

    if split == "all":
        return None
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)} or all")
    return split


def _announce(paths: list[Path], summary: str) -> None:
    typer.echo(summary)
    typer.echo("wrote " + ", ".join(str(p) for p in paths))


@app.command("rerank")
def rerank_command(
    dataset: str = typer.Option(..., "--dataset", help="trec_dl_passage or scifact."),
    output: Path = typer.Option(..., "--output", help="Report file (.json); .md and .png are written beside it."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
    split: str = typer.Option("dev", "--split", help=SPLIT_HELP),
    candidates: int = candidates_option(100),
    model: str | None = typer.Option(None, "--model", help=MODEL_HELP),
    adapter: str = typer.Option("default", "--adapter", help=ADAPTER_HELP),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    limit: int | None = typer.Option(None, "--limit", help=LIMIT_HELP),
    systems: str = typer.Option(
        "first_stage,dense,rankrag,fused,hybrid",  # rankrag.eval.rerank.DEFAULT_RERANK_SYSTEMS (not imported: --help stays light)
        "--systems",
        help=(
            "Comma-separated systems to run: first_stage, dense (embedding cosine alone), rankrag (LLM alone), fused "
            "(LLM + first stage), hybrid (what RankRAGReranker() does), llm_rerank (needs the llamaindex extra)."
        ),
    ),
    alpha: float | None = typer.Option(
        None, "--alpha", help="Fusion weight for 'fused' (0 retriever .. 1 LLM); default: the model's calibration."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help=PROGRESS_HELP),
) -> None:
    """Rerank first-stage candidates; report nDCG@10, Recall@5/10/20, MRR@10 and seconds per query."""
    with command_errors():
        from rankrag.data.datasets import load_rerank_dataset
        from rankrag.eval.report import markdown_summary, write_report
        from rankrag.eval.rerank import RERANK_SYSTEMS, evaluate_rerank, load_llm_rerank_baseline, parse_systems

        chosen = parse_systems(systems, RERANK_SYSTEMS)
        check_limit(limit)
        from rankrag.model.validation import check_positive

        check_positive(candidates, "--candidates")
        if alpha is not None and not 0.0 <= alpha <= 1.0:
            raise ValueError(f"--alpha must be between 0 (retriever only) and 1 (LLM only), got {alpha}")
        chosen_split = split_option(split)
        if "llm_rerank" in chosen:
            load_llm_rerank_baseline()  # a missing [llamaindex] extra fails here, before any data or model loads
        data = load_rerank_dataset(data_dir, dataset, split=chosen_split, limit=limit)
        loaded = load_model(model, adapter, device) if chosen != ["first_stage"] else None
        report = evaluate_rerank(
            loaded, data, chosen, candidates=candidates, alpha=alpha, split=split, progress=progress
        )
        _announce(write_report(report, output), markdown_summary(report))


@app.command("qa")
def qa_command(
    dataset: str = typer.Option(
        ...,
        "--dataset",
        help="squad_v1.1_dev, hotpotqa_dev_distractor, musique_ans_dev, 2wikimultihopqa_dev or pubmedqa_pqal.",
    ),
    output: Path = typer.Option(..., "--output", help="Report file (.json); .md and .png are written beside it."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
    split: str = typer.Option("dev", "--split", help=SPLIT_HELP),
    top_k: int = typer.Option(5, "--top-k", help="Contexts given to the generator."),
    model: str | None = typer.Option(None, "--model", help=MODEL_HELP),
    adapter: str = typer.Option("default", "--adapter", help=ADAPTER_HELP),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    limit: int | None = typer.Option(None, "--limit", help=LIMIT_HELP),
    max_new_tokens: int = typer.Option(32, "--max-new-tokens", help="Answer length limit in tokens."),
    systems: str = typer.Option(
        "retrieval_order,rankrag,oracle",  # rankrag.eval.qa.DEFAULT_QA_SYSTEMS (not imported: --help stays light)
        "--systems",
        help="Comma-separated systems to run: retrieval_order, dense, rankrag, hybrid, oracle.",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help=PROGRESS_HELP),
    answerer_adapter: str = typer.Option("default", "--answerer-adapter", help=ANSWERER_ADAPTER_HELP),
) -> None:
    """Answer from the listed top-k, the RankRAG top-k and the gold contexts; report EM, F1 and Recall@k."""
    with command_errors():
        from rankrag.data.datasets import load_qa_dataset
        from rankrag.eval.qa import QA_SYSTEMS, evaluate_qa
        from rankrag.eval.report import markdown_summary, write_report
        from rankrag.eval.rerank import parse_systems

        chosen = parse_systems(systems, QA_SYSTEMS)
        check_limit(limit)
        if top_k < 1:
            raise ValueError(f"--top-k must be a positive integer, got {top_k}")
        if max_new_tokens < 1:
            raise ValueError(f"--max-new-tokens must be a positive integer, got {max_new_tokens}")
        chosen_split = split_option(split)
        items = load_qa_dataset(data_dir, dataset, split=chosen_split, limit=limit)
        if not items:
            raise ValueError(f"no questions in {dataset!r} for split {split!r}")
        loaded = load_model(model, adapter, device, answerer_adapter)
        report = evaluate_qa(
            loaded,
            dataset,
            items,
            top_k=top_k,
            split=split,
            max_new_tokens=max_new_tokens,
            progress=progress,
            systems=chosen,
        )
        _announce(write_report(report, output), markdown_summary(report))

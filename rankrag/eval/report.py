"""Writing an evaluation: the JSON report, a short Markdown summary and a PNG of Recall@k per system.

``FILE.json`` gets ``FILE.md`` and ``FILE.png`` beside it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from rankrag.files import write_text_atomic
from rankrag.optional import require

RERANK_COLUMNS = ("ndcg@10", "recall@5", "recall@10", "recall@20", "mrr@10", "seconds_per_query")
QA_COLUMNS = ("em", "f1", "recall@k")


def sidecar_paths(json_path: Path) -> tuple[Path, Path]:
    """The Markdown and PNG files written next to ``json_path``."""
    return json_path.with_suffix(".md"), json_path.with_suffix(".png")


def _is_qa(report: dict[str, Any]) -> bool:
    return "n_questions" in report


def markdown_summary(report: dict[str, Any]) -> str:
    """A Markdown table of the systems' figures with the run's settings."""
    qa = _is_qa(report)
    columns = QA_COLUMNS if qa else RERANK_COLUMNS
    lines = [f"# {'QA' if qa else 'Reranking'} evaluation: {report['dataset']}", ""]
    settings = [
        f"model `{report['model']}`",
        f"split `{report.get('split', 'all')}`",
        f"{report['n_questions']} questions, top-k {report['top_k']}"
        if qa
        else f"{report['n_queries']} queries, {report['candidates']} candidates each",
    ]
    if report.get("alpha") is not None:
        settings.append(f"fusion alpha {report['alpha']:.2f} ({report.get('alpha_source', '')})")
    lines += ["; ".join(settings) + ".", ""]
    header = "recall@" + str(report["top_k"]) if qa else None
    names = [header if (c == "recall@k" and header) else c for c in columns]
    lines.append("| system | " + " | ".join(names) + " |")
    lines.append("| --- |" + " ---: |" * len(columns))
    for system, figures in report["systems"].items():
        cells = [f"{figures[c]:.3f}" if c != "seconds_per_query" else f"{figures[c]:.2f}" for c in columns]
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    if qa and report.get("metric_note"):
        lines += ["", f"Metrics: {report['metric_note']}."]
    parsing = report.get("llm_rerank_parsing")
    if parsing:
        lines += [
            "",
            f"llm_rerank: in {parsing['batches_without_choices']} of {parsing['batches']} batches LlamaIndex's "
            f"parser found no choice; {parsing['passages_unranked_kept_in_first_stage_order']} passages the "
            "model did not pick follow the picked ones in first-stage order.",
        ]
    return "\n".join(lines) + "\n"


def plot_recall(report: dict[str, Any], path: Path) -> None:
    """Recall@5/10/20 per system (reranking) or Recall@k, EM and F1 per system (QA)."""
    matplotlib = require("matplotlib", "eval", "plotting the report")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = list(report["systems"])
    figure, axis = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    if _is_qa(report):
        metrics = [("recall@k", f"Recall@{report['top_k']}"), ("em", "EM"), ("f1", "F1")]
        width = 0.8 / len(metrics)
        for offset, (key, label) in enumerate(metrics):
            positions = [i + (offset - (len(metrics) - 1) / 2) * width for i in range(len(systems))]
            axis.bar(positions, [report["systems"][s][key] for s in systems], width, label=label)
        axis.set_xticks(range(len(systems)), systems)
        axis.set_title(f"{report['dataset']}: {report['n_questions']} questions, top-{report['top_k']}")
    else:
        cutoffs = [5, 10, 20]
        for system in systems:
            axis.plot(cutoffs, [report["systems"][system][f"recall@{k}"] for k in cutoffs], marker="o", label=system)
        axis.set_xticks(cutoffs)
        axis.set_xlabel("k")
        axis.set_ylabel("Recall@k")
        axis.set_title(f"{report['dataset']}: {report['n_queries']} queries, reranking the top {report['candidates']}")
    axis.set_ylim(0, 1)
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def write_report(report: dict[str, Any], json_path: str | os.PathLike[str]) -> list[Path]:
    """Write the JSON, the Markdown summary and the plot; returns the three paths."""
    path = Path(json_path)
    markdown, png = sidecar_paths(path)
    write_text_atomic(path, json.dumps(report, indent=2) + "\n")
    write_text_atomic(markdown, markdown_summary(report))
    plot_recall(report, png)
    return [path, markdown, png]

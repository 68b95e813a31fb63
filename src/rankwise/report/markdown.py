"""``report.md`` for a run folder: metrics table and the figures beside it."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from rankwise.io import write_text


def metrics_table(columns: Mapping[str, Mapping[str, float]]) -> str:
    """Markdown table: one row per metric, one column per system (e.g. BM25, before, after)."""
    names = list(columns)
    metrics = list(next(iter(columns.values())))
    lines = ["| metric | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for m in metrics:
        lines.append(f"| {m} | " + " | ".join(f"{columns[n].get(m, float('nan')):.4f}" for n in names) + " |")
    return "\n".join(lines)


def write_report(
    path: str | Path,
    *,
    title: str,
    summary: str,
    columns: Mapping[str, Mapping[str, float]],
    figures: Mapping[str, str],
    details: str = "",
) -> Path:
    parts = [f"# {title}", "", summary, "", metrics_table(columns), ""]
    for caption, rel in figures.items():
        parts += [f"## {caption}", "", f"![{caption}]({rel})", ""]
    if details:
        parts += [details, ""]
    write_text(path, "\n".join(parts))
    return Path(path)

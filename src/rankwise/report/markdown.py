"""The short report every run folder gets: a metrics table and the figures beside it, written as
``report.md`` and a self-contained ``report.html`` (``rankwise report`` writes the full one)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from rankwise.report.document import Document, Figure, Heading, Paragraph, TableBlock


def metrics_table(columns: Mapping[str, Mapping[str, float]]) -> TableBlock:
    """One row per metric, one column per system (e.g. BM25, before, after)."""
    names = list(columns)
    metrics = list(next(iter(columns.values())))
    rows = [[m, *(f"{columns[n].get(m, float('nan')):.4f}" for n in names)] for m in metrics]
    return TableBlock(["metric", *names], rows)


def write_report(
    path: str | Path,
    *,
    title: str,
    summary: str,
    columns: Mapping[str, Mapping[str, float]],
    figures: Mapping[str, str],
    details: str = "",
) -> Path:
    """Write ``path`` (markdown) and the HTML beside it; figures are PNGs in the same folder."""
    path = Path(path)
    doc = Document(title, [Paragraph(summary), metrics_table(columns)])
    for caption, rel in figures.items():
        doc.add(Heading(caption), Figure(caption, rel))
    if details:
        doc.add(Paragraph(details))
    doc.write(path.parent, path.stem)
    return path

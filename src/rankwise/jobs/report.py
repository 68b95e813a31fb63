"""``rankwise report``: report.html (self-contained) and report.md for a run folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class ReportJob:
    markdown: Path
    html: Path


def report(
    run_dir: str | Path,
    *,
    baseline: Path | None = None,
    qrels: Path | None = None,
    data: Path | None = None,
    split: str | None = None,
    worst: int = 10,
    lenient: bool = False,
) -> ReportJob:
    """Metrics, ROC, score histograms, training curves, per-query deltas and the worst queries."""
    from rankwise.report.run_report import build_report

    md, page = build_report(
        Path(run_dir), baseline=baseline, qrels=qrels, data=data, split=split, lenient=lenient, worst=worst
    )
    return ReportJob(Path(md), Path(page))

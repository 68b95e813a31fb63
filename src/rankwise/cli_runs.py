"""The ``rankwise export`` and ``rankwise compare`` commands: what is done with finished runs and models."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from rankwise.cli_support import DEFAULT_METRICS_TEXT, METRICS_HELP, _data_folder
from rankwise.errors import RankwiseError
from rankwise.progress import results


def export_cmd(
    model: Path = typer.Argument(..., help="a dual encoder's folder (e.g. RUN/model)"),
    out: Path = typer.Option(..., help="folder for the export (model.onnx, tokenizer, export.json)"),
    onnx: bool = typer.Option(True, help="export to ONNX (torch.onnx; run by onnxruntime)"),
    int8: bool = typer.Option(False, help="also onnxruntime's dynamic int8 quantisation (model-int8.onnx)"),
    data: Optional[Path] = typer.Option(None, help="BEIR folder to check the export on (exact metrics, paired test)"),
    split: str = typer.Option("test", help="qrels split to check on"),
    k: int = typer.Option(100, min=1),
    alpha: float = typer.Option(0.05, min=1e-6, max=0.5),
    overwrite: bool = typer.Option(False, help="clear a non-empty --out first"),
) -> None:
    """Export a dual encoder to ONNX (and int8), check it against the original on a split: nDCG@10 and
    Recall@100 of each, the paired t-test, per-query CPU latency; exit 1 if an export is significantly worse."""
    from rankwise.jobs.export import export

    if not onnx:
        raise RankwiseError("export writes ONNX (--onnx); no other format yet")
    job = export(model, out, int8=int8, data=_data_folder(data) if data else None, split=split, k=k, alpha=alpha,
                 overwrite=overwrite)  # fmt: skip
    results.print(f"wrote {', '.join(str(g) for g in job.graphs)}")
    if not job.metrics:
        return
    table = Table(title=f"{data} ({split}): the export against the original")
    for col in ("variant", "nDCG@10", "Recall@100", "Δ nDCG@10", "p (Holm)", "ms / query", "verdict"):
        table.add_column(col, justify="left" if col in ("variant", "verdict") else "right")
    for name, m in job.metrics.items():
        c = job.checks[name]
        verdict = "baseline" if name == "original" else "good" if job.good[name] else "[red]significantly worse[/]"
        table.add_row(name, f"{m['ndcg@10']:.4f}", f"{m['recall@100']:.4f}", f"{c['delta']:+.4f}",
                      f"{c['p_holm']:.3g}", f"{job.latency_ms[name]:.1f}", verdict)  # fmt: skip
    results.print(table)
    if not all(job.good.values()):
        raise typer.Exit(1)


def compare_cmd(
    runs: list[str] = typer.Argument(
        ...,
        help="run folders (with run.trec and config.toml) or TREC run files; NAME=RUN,RUN,... a system with a run per seed",
    ),
    baseline: Optional[str] = typer.Option(None, help="run to compare against, by path or name [default: the first]"),
    qrels: Optional[Path] = typer.Option(
        None, help="qrels file (BEIR TSV or TREC) [default: from the run folders' config]"
    ),
    data: Optional[Path] = typer.Option(None, help="BEIR folder whose qrels/<split>.tsv to use"),
    split: Optional[str] = typer.Option(None, help="qrels split with --data [default: the run folder's, else test]"),
    metrics: str = typer.Option(DEFAULT_METRICS_TEXT, help=METRICS_HELP),
    test: Optional[str] = typer.Option(
        None,
        help="t (paired t-test), fisher (randomization) or two-level (queries and seeds) [default: two-level with seeds, else t]",
    ),
    alpha: float = typer.Option(0.05, min=1e-6, max=0.5),
    resamples: int = typer.Option(10_000, min=100, help="bootstrap resamples and randomization permutations"),
    seed: int = typer.Option(0),
    out: Optional[Path] = typer.Option(None, help="also write the table as markdown (and .json beside it)"),
    lenient: bool = typer.Option(False, help="drop bad run lines and unjudged queries with a counted warning"),
    common: bool = typer.Option(False, help="runs covering different judged queries: compare over the common ones"),
) -> None:
    """Metrics per run with confidence intervals, and significance against a baseline."""
    from rankwise.jobs.compare import compare, parse_metrics

    job = compare(
        runs, baseline=baseline, qrels=qrels, data=data, split=split, metrics=parse_metrics(metrics), test=test,
        alpha=alpha, resamples=resamples, seed=seed, out=out, lenient=lenient, common=common,
    )  # fmt: skip
    res = job.comparison
    table = Table(
        title=f"{len(res.cells)} runs on {job.qrels}: mean [{100 * (1 - alpha):.0f}% CI], Δ vs {res.baseline}, p"
    )
    table.add_column("run")
    for m in res.metrics:
        table.add_column(m, justify="right")
    for name in res.cells:
        cells = []
        for m in res.metrics:
            first, second = res.cell(name, m)
            mark = res.marker(name, m)
            color = "green" if mark == "▲" else "red" if mark == "▼" else "dim"
            cells.append(escape(first) + (f"\n[{color}]{escape(second)}[/]" if second else ""))
        table.add_row(escape(res.label(name)), *cells)
    results.print(table)
    results.print(escape(res.caption()))
    if out is not None:
        results.print(f"wrote {out}")

"""The ``rankwise`` command line (typer + rich)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from rankwise.errors import RankwiseError
from rankwise.progress import console

typer_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Train and evaluate neural retrievers with ranking-aligned objectives.")
data_app = typer.Typer(no_args_is_help=True, help="Get, build and inspect datasets.")
typer_app.add_typer(data_app, name="data")

DEFAULT_DATASET = "stdlib-code"


def _table(title: str, columns: dict[str, dict[str, float]]) -> Table:
    table = Table(title=title)
    table.add_column("metric")
    for name in columns:
        table.add_column(name, justify="right")
    for metric in next(iter(columns.values())):
        table.add_row(metric, *(f"{columns[c][metric]:.4f}" for c in columns))
    return table


@typer_app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), help="run folder to write"),
    steps: Optional[int] = typer.Option(None, help="override the number of fine-tuning steps"),
) -> None:
    """Build stdlib-code, evaluate BM25 and the base model, fine-tune, evaluate again."""
    from rankwise.workflows import run_demo

    metrics = run_demo(out, steps=steps)
    console.print(_table("stdlib-code test", {"BM25": metrics["bm25"], "before": metrics["before"], "after": metrics["after"]}))
    gain = 100 * (metrics["after"]["ndcg@10"] - metrics["before"]["ndcg@10"])
    console.print(f"nDCG@10 {gain:+.1f} points after fine-tuning. Run folder: {out} (report.md, metrics.json, run.trec, model/)")


@typer_app.command("train")
def train_cmd(
    data: Optional[Path] = typer.Option(None, help="BEIR folder (its qrels split gives the training pairs)"),
    out: Path = typer.Option(..., help="run folder (checkpoints, model, report)"),
    config: Optional[Path] = typer.Option(None, help="TOML file with training options ([train] table)"),
    split: Optional[str] = typer.Option(None, help="qrels split to train on [default: train]"),
    train_file: Optional[Path] = typer.Option(None, help="training JSONL instead of qrels pairs"),
    eval_split: Optional[str] = typer.Option(None, help="evaluate before and after training on this split"),
    resume: bool = typer.Option(False, help="continue from the last checkpoint in --out"),
    allow_missing: bool = typer.Option(False, help="drop qrels naming unknown queries/documents with a warning"),
    model: Optional[str] = typer.Option(None, help="base model (default: packaged all-MiniLM-L6-v2)"),
    loss: Optional[str] = typer.Option(None, help="loss spec, e.g. 'infonce:temperature=0.05'"),
    steps: Optional[int] = typer.Option(None),
    batch_size: Optional[int] = typer.Option(None),
    lr: Optional[float] = typer.Option(None),
    seed: Optional[int] = typer.Option(None),
    query_max_length: Optional[int] = typer.Option(None),
    doc_max_length: Optional[int] = typer.Option(None),
    negatives_per_query: Optional[int] = typer.Option(None),
    checkpoint_every: Optional[int] = typer.Option(None),
) -> None:
    """Fine-tune a dual encoder; --resume continues after a kill with the same result."""
    from rankwise.train import load_config
    from rankwise.workflows import run_train

    cfg = load_config(config, model=model, loss=loss, steps=steps, batch_size=batch_size, lr=lr, seed=seed,
                      query_max_length=query_max_length, doc_max_length=doc_max_length,
                      negatives_per_query=negatives_per_query, checkpoint_every=checkpoint_every)
    # a run folder's config.toml names its data and splits in [run]; flags win
    run_table = {}
    if config is not None:
        from rankwise.train.config import tomllib

        run_table = tomllib.loads(config.read_text(encoding="utf-8")).get("run", {})
    data = data or (Path(run_table["data"]) if run_table.get("data") else None)
    train_file = train_file or (Path(run_table["train_file"]) if run_table.get("train_file") else None)
    split = split or run_table.get("split", "train")
    eval_split = eval_split or run_table.get("eval_split")
    if data is None:
        raise RankwiseError("--data is required (or a config.toml whose [run] table names it)")
    summary = run_train(data, out, cfg, split=split, train_file=train_file, eval_split=eval_split, resume=resume, allow_missing=allow_missing)
    if "after" in summary:
        console.print(_table(f"{data} {eval_split}", {"before": summary["before"], "after": summary["after"]}))
    console.print(f"model saved to {out / 'model'}; report: {out / 'report.md'}")


@typer_app.command("eval")
def eval_cmd(
    data: Path = typer.Option(..., help="BEIR folder"),
    out: Path = typer.Option(..., help="run folder to write"),
    split: str = typer.Option("test", help="qrels split: its queries are the ones evaluated"),
    model: Optional[str] = typer.Option(None, help="model folder or name (default: packaged all-MiniLM-L6-v2)"),
    k: int = typer.Option(100, help="documents retrieved per query"),
    max_length: Optional[int] = typer.Option(None, help="token limit for queries and documents (default: the model's)"),
    allow_missing: bool = typer.Option(False, help="drop qrels naming unknown queries/documents with a warning"),
) -> None:
    """Retrieve with a dual encoder and score the run as trec_eval does."""
    from rankwise.workflows import run_eval

    metrics = run_eval(data, split, out, model_name=model, k=k, allow_missing=allow_missing, max_length=max_length)
    console.print(_table(f"{data} ({split})", {model or "all-MiniLM-L6-v2": metrics}))


@data_app.command("get")
def data_get(
    spec: str = typer.Argument(..., help="beir:<name>, e.g. beir:scifact"),
    out: Path = typer.Option(Path("datasets"), help="folder to unpack into"),
    url: Optional[str] = typer.Option(None, help="download from this URL instead of the BEIR mirror"),
) -> None:
    """Download and unpack a BEIR dataset (needs a network)."""
    from rankwise.data.download import get_dataset
    from rankwise.progress import task

    with task(f"download {spec}", None) as advance:
        seen = [0]

        def progress(done: int, total: int | None) -> None:
            advance(done - seen[0], info=f"{done / 1e6:.1f} MB" + (f" of {total / 1e6:.1f}" if total else ""))
            seen[0] = done

        path = get_dataset(spec, out, url=url, progress=progress)
    console.print(f"unpacked to {path}")


@data_app.command("build")
def data_build(
    name: str = typer.Argument(DEFAULT_DATASET, help="built-in dataset: stdlib-code"),
    out: Path = typer.Option(..., help="folder to write (BEIR layout)"),
) -> None:
    """Build a built-in dataset in BEIR format."""
    if name != DEFAULT_DATASET:
        raise RankwiseError(f"unknown built-in dataset {name!r}; available: {DEFAULT_DATASET}")
    from rankwise.data.stdlib_code import build

    path = build(out)
    console.print((path / "BUILD.json").read_text())


@data_app.command("inspect")
def data_inspect(folder: Path = typer.Argument(..., help="BEIR folder")) -> None:
    """Counts, length statistics, label distribution and the problems found."""
    from rankwise.data.inspect import inspect_dataset

    rep = inspect_dataset(folder)
    console.print(f"[bold]{rep.path}[/]: {rep.documents} documents, {rep.queries} queries")
    for label, stats in (("document words", rep.doc_words), ("query words", rep.query_words)):
        console.print(f"  {label}: " + ", ".join(f"{k} {v:.0f}" for k, v in stats.items()))
    table = Table(title="splits")
    for col in ("split", "queries", "judgements", "no positive", "labels", "positives/query"):
        table.add_column(col)
    for s in rep.splits:
        table.add_row(s.split, str(s.queries), str(s.judgements), str(s.queries_without_positive),
                      ", ".join(f"{k}: {v}" for k, v in s.labels.items()), f"mean {s.positives_per_query['mean']:.2f}")
    console.print(table)
    if rep.problems:
        console.print("[yellow]problems:[/]")
        for p in rep.problems:
            console.print(f"  - {p}")
    else:
        console.print("no problems found")


def app() -> None:
    """Entry point: user errors print one clear line, not a traceback."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        typer_app()
    except RankwiseError as exc:
        # one unwrapped line, and no rich markup read into the message (it may hold "[...]")
        console.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True, highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    app()

"""The ``rankwise`` command line (typer + rich)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from rankwise.cli_groups import adapt_cmd, data_app, ltr_app
from rankwise.cli_runs import compare_cmd, export_cmd
from rankwise.cli_support import (
    DEFAULT_METRICS_TEXT,
    METRICS_HELP,
    _data_folder,
    _dataclass_options,
    _plain,
    _table,
    _torchrun,
    _with_config_options,
    _with_options,
    said_as_flag,
)
from rankwise.cli_support import cli_message as _message
from rankwise.errors import RankwiseError
from rankwise.negatives.options import MineOptions as MINE_OPTIONS
from rankwise.progress import console, results

typer_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Train and evaluate neural retrievers with ranking-aligned objectives.",
)
typer_app.add_typer(data_app, name="data")
typer_app.add_typer(ltr_app, name="ltr")


def _version(value: bool) -> None:
    if value:
        from rankwise import __version__

        results.print(f"rankwise {__version__}")
        raise typer.Exit()


@typer_app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="print the version and exit"
    ),
) -> None:
    """Train and evaluate neural retrievers with ranking-aligned objectives."""


@typer_app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), help="run folder to write"),
    steps: Optional[int] = typer.Option(None, help="override the number of fine-tuning steps"),
) -> None:
    """Build stdlib-code, evaluate BM25 and the base model, fine-tune, evaluate again."""
    from rankwise.jobs import demo as run_demo

    job = run_demo(out, steps=steps)
    results.print(
        _table("stdlib-code test", {"BM25": job.bm25, "base model": job.before, "rankwise recipe": job.after})
    )
    base = job.baseline
    results.print(
        f"nDCG@10 {job.gain:+.1f} points with rankwise's recipe ({job.recipe}) in {job.seconds / 60:.1f} min; "
        f"{base['recipe']}: {base['ndcg@10']:.4f} ({base['source']}). "
        f"Run folder: {out} (report.md, metrics.json, run.trec, model/)",
        markup=False,
    )


def train_cmd(
    data: Optional[Path] = typer.Option(
        None, help="BEIR folder, or stdlib-code (its qrels split gives the training pairs)"
    ),
    out: Path = typer.Option(..., help="run folder (checkpoints, model, report)"),
    config: Optional[Path] = typer.Option(
        None, help="TOML file with training options ([train] table; a run folder's config.toml)"
    ),
    split: Optional[str] = typer.Option(None, help="qrels split to train on [default: train]"),
    train_file: Optional[Path] = typer.Option(None, help="training JSONL instead of qrels pairs"),
    eval_split: Optional[str] = typer.Option(None, help="evaluate before and after training on this split"),
    check_data: Optional[Path] = typer.Option(
        None, help="out-of-domain BEIR folder (e.g. trec-dl-5k) whose test split is scored beside --eval-split"
    ),
    resume: bool = typer.Option(False, help="continue from the last checkpoint in --out"),
    overwrite: bool = typer.Option(False, help="clear a non-empty --out first (a run folder never mixes two runs)"),
    allow_missing: bool = typer.Option(False, help="drop qrels naming unknown queries/documents with a warning"),
    recipe: Optional[str] = typer.Option(
        None, help="named recipe: tas-balanced | margin-mse | distil-kl (its options; flags given win)"
    ),
    teacher: Optional[Path] = typer.Option(None, help="teacher folder (a cross-encoder or bi-encoder) of --recipe"),
    nproc: int = typer.Option(
        1, min=1, help="data-parallel processes on this machine (starts torchrun; gloo on CPU, nccl on GPUs)"
    ),
    **options: Any,
) -> None:
    """Fine-tune a dual encoder, or a reranker with --kind cross-encoder; --resume continues after a kill
    with the same result."""
    from rankwise.jobs import train_run
    from rankwise.training.config import load_run_config

    if nproc > 1:
        _torchrun(nproc)
    if recipe is not None:
        from rankwise.training.recipes import recipe_options

        options = {k: v for k, v in options.items() if v is not None}
        options = recipe_options(recipe, teacher) | options
    elif teacher is not None:
        raise RankwiseError("--teacher goes with --recipe (or give it inside --negatives, e.g. bm25:teacher=DIR)")
    job = load_run_config(
        config,
        run={
            "data": data,
            "split": split,
            "train_file": train_file,
            "eval_split": eval_split,
            "check_data": check_data,
        },
        **options,
    )
    run = job.run
    if run.data is None and run.train_file is None:
        raise RankwiseError("--data or --train-file is required (or a config.toml whose [run] table names them)")
    job = train_run(
        _data_folder(run.data) if run.data is not None else None,
        out,
        job.train,
        split=run.split,
        train_file=run.train_file,
        eval_split=run.eval_split,
        check_data=run.check_data,
        resume=resume,
        overwrite=overwrite,
        allow_missing=allow_missing,
    )
    from rankwise.distributed import is_main

    if not is_main():  # under torchrun, one process speaks
        return
    if job.after is not None:
        results.print(_table(f"{run.data} {run.eval_split}", {"before": job.before, "after": job.after}))
    results.print(f"run folder: {out} (model/, report.html, metrics.json)")


typer_app.command("train")(_with_config_options(train_cmd))
typer_app.command("adapt")(_with_config_options(adapt_cmd))


@typer_app.command("ar2")
def ar2_cmd(
    data: Path = typer.Option(..., help="BEIR folder (or stdlib-code) whose train qrels both models learn from"),
    retriever: Path = typer.Option(..., help="dual-encoder folder to start from"),
    ranker: Path = typer.Option(..., help="cross-encoder folder to start from"),
    out: Path = typer.Option(..., help="folder for the rounds (resumable: run again to continue)"),
    split: str = typer.Option("train"),
    rounds: int = typer.Option(2, min=1),
    depth: int = typer.Option(30, min=2, help="retriever's top documents the candidates come from"),
    candidates: int = typer.Option(7, min=1, help="hard negatives per query per list"),
    ranker_steps: int = typer.Option(40, min=1),
    retriever_steps: int = typer.Option(45, min=1),
) -> None:
    """AR2: co-train a retriever and a ranker, the retriever's candidates teaching the ranker and the
    ranker's distribution teaching the retriever; prints the schedule, resumes after a kill."""
    from rankwise.jobs import ar2
    from rankwise.training.recipes import AR2Schedule

    sizes = {"depth": depth, "candidates": candidates, "ranker_steps": ranker_steps, "retriever_steps": retriever_steps}
    schedule = AR2Schedule(rounds=rounds, **sizes)
    job = ar2(_data_folder(data), retriever, ranker, out, schedule, split=split, log=_plain)
    results.print(f"retriever: {job.retriever}  ranker: {job.ranker}", markup=False)


@typer_app.command("sweep")
def sweep_cmd(
    data: Path = typer.Option(..., help="BEIR folder (or stdlib-code) with train, dev and test qrels"),
    budget: int = typer.Option(..., min=1, help="optimizer steps for all trainings together"),
    out: Path = typer.Option(..., help="sweep folder (resumable: run again to continue)"),
    recipes: Optional[Path] = typer.Option(None, help="TOML with a table per recipe: [NAME] loss=..., negatives=..."),
    config: Optional[Path] = typer.Option(None, help="TOML with the options every recipe shares ([train] table)"),
    eta: int = typer.Option(2, min=2, help="keep 1/eta of the recipes each round, train them eta x longer"),
    dev_split: str = typer.Option("dev"),
    test_split: str = typer.Option("test"),
) -> None:
    """Successive halving over named recipes on the dev split; the winner's config is saved and
    scored once on test."""
    from rankwise.jobs.sweep import read_recipes, run_sweep
    from rankwise.training.config import load_config

    res = run_sweep(
        _data_folder(data), out, budget, base=load_config(config), recipes=read_recipes(recipes),
        dev_split=dev_split, test_split=test_split, eta=eta,
    )  # fmt: skip
    table = Table(title=f"sweep on {data} ({dev_split}), last round")
    for col in ("recipe", "steps", "dev nDCG@10", "95% CI"):
        table.add_column(col)
    for row in res.rounds[-2] + res.rounds[-1] if len(res.rounds) > 1 else res.rounds[-1]:
        ci = f"[{row['ci'][0]:.3f}, {row['ci'][1]:.3f}]"
        table.add_row(escape(row["recipe"]), str(row["steps"]), f"{row['ndcg@10']:.4f}", escape(ci))
    results.print(table)
    results.print(
        f"chosen on dev: {res.best} ({res.steps_used} of {budget} steps used); config: {out / 'best.toml'}; "
        f"test nDCG@10 (the sweep's only test figure): {res.test.get('ndcg@10', float('nan')):.4f}"
    )


FUSION_HELP = "with several retrievers joined by +: rrf[:k=60], combsum:NORM[,weights=a/b] or combmnz:NORM (NORM: min-max, z-score, sum, max) [default: rrf]"


def _ints(text: str, option: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise RankwiseError(f"--{option} {text}: expected whole numbers joined by commas, e.g. 64,128,384") from None


@typer_app.command("eval")
def eval_cmd(
    data: Optional[Path] = typer.Option(None, help="BEIR folder [with --run: default, the run folder's]"),
    out: Optional[Path] = typer.Option(None, help="run folder to write (needed unless --run)"),
    split: str = typer.Option("test", help="qrels split: its queries are the ones evaluated"),
    model: Optional[str] = typer.Option(None, help="model folder or name (default: packaged all-MiniLM-L6-v2)"),
    k: int = typer.Option(100, help="documents retrieved per query"),
    max_length: Optional[int] = typer.Option(None, help="token limit for queries and documents (default: the model's)"),
    allow_missing: bool = typer.Option(False, help="drop qrels naming unknown queries/documents with a warning"),
    device: Optional[str] = typer.Option(None, help="cpu | cuda | cuda:N | mps (default: the best available)"),
    retriever: str = typer.Option(
        "dense", help="dense (the --model), bm25, or several joined by + (bm25+dense, bm25+MODEL_DIR): fused"
    ),
    fusion: Optional[str] = typer.Option(None, help=FUSION_HELP),
    dims: Optional[str] = typer.Option(
        None, help="the cost-quality frontier: embedding prefixes to evaluate, e.g. 64,128,384 (Matryoshka)"
    ),
    precision: Optional[str] = typer.Option(
        None, help="with the frontier: fp32,int8,binary,binary-itq (exact search over codes)"
    ),
    overwrite: bool = typer.Option(False, help="clear a non-empty --out first (a run folder never mixes two runs)"),
    run: Optional[Path] = typer.Option(
        None, help="score an existing run instead (a TREC file or a run folder: eval, train, rerank)"
    ),
    metrics_list: Optional[str] = typer.Option(
        None, "--metrics", help=f"with --run: {METRICS_HELP} [default: {DEFAULT_METRICS_TEXT}]"
    ),
    ray: Optional[str] = typer.Option(None, help="encode the corpus on a Ray cluster (an address, 'auto', or 'local')"),
    workers: int = typer.Option(2, min=1, help="with --ray: encoder actors (one model copy each)"),
    lenient: bool = typer.Option(
        False, help="with --run: drop bad run lines and unjudged queries with a counted warning"
    ),
) -> None:
    """Retrieve with a dual encoder (or BM25) and score the run as trec_eval does; --run scores a run
    that exists (e.g. a rerank folder), with the qrels its folder names."""
    from rankwise.jobs.compare import parse_metrics

    if run is not None:
        from rankwise.jobs import score_run_file

        score = score_run_file(
            run,
            data=_data_folder(data) if data else None,
            split=split,
            metrics=parse_metrics(metrics_list or DEFAULT_METRICS_TEXT),
            lenient=lenient,
        )
        results.print(_table(score.qrels, {score.name: score.metrics}))
        if score.note:
            results.print(f"[yellow]note:[/] {escape(score.note)}")
        return
    if lenient:
        raise RankwiseError("--lenient goes with --run (scoring a run that exists)")
    if metrics_list is not None:
        raise RankwiseError("--metrics goes with --run (a retrieval run reports ndcg@10, mrr@10, recall@100, map)")
    if data is None or out is None:
        raise RankwiseError("--data and --out are required (or --run to score an existing run)")
    from rankwise.jobs import evaluate_split

    job = evaluate_split(
        _data_folder(data), split, out, model_name=model, k=k, allow_missing=allow_missing, max_length=max_length,
        device=device, retriever=retriever, fusion=fusion, overwrite=overwrite, ray=ray, workers=workers,
        dims=_ints(dims, "dims") if dims else None, precision=precision.split(",") if precision else None,
    )  # fmt: skip
    if job.frontier is not None:
        results.print(escape(job.frontier.markdown()))
        results.print(f"run folder: {out} (frontier.json, frontier.md, frontier.png)")
        return
    label = model or "all-MiniLM-L6-v2" if retriever == "dense" else job.label
    results.print(_table(f"{data} ({split})", {label: job.metrics}))
    results.print(f"run folder: {out} (run.trec, metrics.json, per_query.json, report.html)")


@typer_app.command("rerank")
def rerank_cmd(
    data: Path = typer.Option(..., help="BEIR folder (or stdlib-code)"),
    out: Path = typer.Option(..., help="run folder to write"),
    reranker: str = typer.Option(
        ..., help="cross-encoder folder, or prf[:k=3,mode=text,alpha=0.5] (the embedding second pass)"
    ),
    split: str = typer.Option("test", help="qrels split: its queries are the ones reranked"),
    retriever: Optional[str] = typer.Option(
        None,
        help="first stage: a retrieving model's folder or name, bm25, or several joined by + (fused) [default: packaged all-MiniLM-L6-v2]",
    ),
    fusion: Optional[str] = typer.Option(None, help=FUSION_HELP),
    run: Optional[Path] = typer.Option(None, help="first stage from a TREC run file instead of --retriever"),
    depth: int = typer.Option(100, min=1, help="first-stage documents reranked per query"),
    interpolate: float = typer.Option(
        0.0, min=0.0, max=1.0, help="weight of the first stage's z-scored scores in a cross-encoder's final score"
    ),
    allow_missing: bool = typer.Option(False, help="drop qrels naming unknown queries/documents with a warning"),
    device: Optional[str] = typer.Option(None, help="cpu | cuda | cuda:N | mps (default: the best available)"),
    overwrite: bool = typer.Option(False, help="clear a non-empty --out first (a run folder never mixes two runs)"),
) -> None:
    """Retrieve, then rerank: both stages' metrics and per-query latency in one run folder."""
    from rankwise.jobs import rerank

    job = rerank(
        _data_folder(data), split, out, reranker=reranker, retriever=retriever, first_run=run, depth=depth,
        interpolate=interpolate, fusion=fusion, allow_missing=allow_missing, device=device, overwrite=overwrite,
    )  # fmt: skip
    results.print(_table(f"{data} ({split})", {"first stage": job.first, "reranked": job.reranked}))
    lat = job.latency
    results.print(
        f"latency per query: first stage {lat['first_ms_mean']:.1f} ms, reranker {lat['second_ms_mean']:.1f} ms "
        f"(p95 {lat['second_ms_p95']:.1f} ms)"
    )
    results.print(f"run folder: {out} (run.trec, run-first.trec, metrics.json, latency.json, report.html)")


typer_app.command("export")(export_cmd)
typer_app.command("compare")(compare_cmd)


@typer_app.command("report")
def report_cmd(
    run_dir: Path = typer.Argument(..., help="run folder (run.trec, config.toml)"),
    baseline: Optional[Path] = typer.Option(
        None, help="run folder or TREC file to compare with [default: RUN_DIR/run-before.trec]"
    ),
    qrels: Optional[Path] = typer.Option(None, help="qrels file [default: from the run folder's config]"),
    data: Optional[Path] = typer.Option(None, help="BEIR folder whose qrels/<split>.tsv to use"),
    split: Optional[str] = typer.Option(None),
    worst: int = typer.Option(10, min=0, help="worst queries to list"),
    lenient: bool = typer.Option(False, help="drop bad run lines and unjudged queries with a counted warning"),
) -> None:
    """Write report.html (self-contained) and report.md with metrics, ROC, score histograms,
    training curves, per-query deltas and the worst queries."""
    from rankwise.jobs import report

    job = report(run_dir, baseline=baseline, qrels=qrels, data=data, split=split, lenient=lenient, worst=worst)
    results.print(f"wrote {job.html} and {job.markdown}")


def mine_cmd(
    data: Path = typer.Option(..., help="BEIR folder"),
    out: Path = typer.Option(..., help="training JSONL to write (id form, with ranks, scores, teacher scores)"),
    split: str = typer.Option("train", help="qrels split whose queries get negatives"),
    lenient: bool = typer.Option(False, help="skip queries without a positive with a counted warning"),
    overwrite: bool = typer.Option(False, help="replace an existing --out file"),
    ray: Optional[str] = typer.Option(None, help="dense: encode the corpus on a Ray cluster (address, auto, local)"),
    workers: int = typer.Option(2, min=1, help="with --ray: encoder actors (one model copy each)"),
    **options: Any,
) -> None:
    """Mine hard negatives (BM25 or dense) for a training split; resumable, written atomically."""
    from rankwise.jobs import mine
    from rankwise.negatives.mining import MineOptions
    from rankwise.spec import convert

    given = {k: v for k, v in options.items() if v is not None}
    if "window" in given:
        given["window"] = convert("--window", "window", given["window"], "tuple[int, int]")
    try:
        opts = MineOptions(**given)
    except ValueError as exc:
        raise RankwiseError(f"mine: {exc}") from None
    job = mine(
        _data_folder(data), out, opts, split=split, lenient=lenient, overwrite=overwrite, ray=ray, workers=workers
    )
    results.print(f"wrote {job.out} (statistics in {job.out}.stats.json)")


typer_app.command("mine")(_with_options(mine_cmd, _dataclass_options(MINE_OPTIONS, skip={"chunk"})))


@typer_app.command("encode")
def encode_cmd(
    data: Path = typer.Option(..., help="BEIR folder (or stdlib-code)"),
    out: Path = typer.Option(..., help="store folder: embeddings.f32 (memory-mapped), manifest.json, ids.json"),
    split: Optional[str] = typer.Option(None, help="keep the documents of this split (stdlib-code's) [default: all]"),
    model: Optional[str] = typer.Option(None, help="dual encoder [default: packaged all-MiniLM-L6-v2]"),
    max_length: Optional[int] = typer.Option(None, help="token limit for documents [default: the model's]"),
    shard_size: int = typer.Option(50_000, min=1, help="documents a shard (the unit a resumed run skips)"),
    ray: Optional[str] = typer.Option(None, help="encode on a Ray cluster: an address, 'auto', or 'local'"),
    workers: int = typer.Option(2, min=1, help="with --ray: encoder actors (one model copy each)"),
) -> None:
    """Encode a corpus into an on-disk embedding store, shard by shard; a killed run resumes."""
    from rankwise.jobs import encode

    job = encode(
        _data_folder(data), out, split=split, model=model, max_length=max_length, shard_size=shard_size, ray=ray,
        workers=workers,
    )  # fmt: skip
    results.print(f"wrote {job.out}: {job.documents} embeddings of dimension {job.dim} ({job.shards} shards)")


def cli_message(message: str) -> str:
    """A library error in command-line terms: ``allow_missing=True`` -> ``--allow-missing``."""
    return _message(message, typer_app)


def app() -> None:
    """Entry point: user errors print one clear line, not a traceback."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        typer_app()
    except RankwiseError as exc:
        # one unwrapped line, and no rich markup read into the message (it may hold "[...]")
        console.print(f"[red]error:[/] {escape(said_as_flag(exc, typer_app))}", soft_wrap=True, highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    app()

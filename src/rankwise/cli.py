"""The ``rankwise`` command line (typer + rich)."""

from __future__ import annotations

import inspect
import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from rankwise.errors import RankwiseError
from rankwise.progress import console, results

typer_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Train and evaluate neural retrievers with ranking-aligned objectives.",
)
data_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Get, build and inspect datasets.")
typer_app.add_typer(data_app, name="data")
ltr_app = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="Learning to rank on feature vectors (SVMlight / LETOR files)."
)
typer_app.add_typer(ltr_app, name="ltr")

DEFAULT_DATASET = "stdlib-code"


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
    results.print(
        _table("stdlib-code test", {"BM25": metrics["bm25"], "before": metrics["before"], "after": metrics["after"]})
    )
    gain = 100 * (metrics["after"]["ndcg@10"] - metrics["before"]["ndcg@10"])
    results.print(
        f"nDCG@10 {gain:+.1f} points after fine-tuning. Run folder: {out} (report.md, metrics.json, run.trec, model/)"
    )


def _config_options() -> list[inspect.Parameter]:
    """One ``--flag`` per :class:`TrainConfig` field, with its description and default, so the
    command and the config cannot drift. Each defaults to None: unset flags leave the TOML's value."""
    from rankwise.training.config import TrainConfig

    params = []
    defaults = TrainConfig().model_dump()  # option strings, as config.toml shows them
    for name, info in TrainConfig.model_fields.items():
        shown = str(defaults[name]).lower() if isinstance(defaults[name], bool) else defaults[name]
        help_text = (info.description or name) + (f"  [default: {shown}]" if shown not in (None, "") else "")
        flag = "--" + name.replace("_", "-")
        if info.annotation is bool:
            kind = Optional[bool]
            option = typer.Option(None, f"{flag}/--no-{flag[2:]}", help=help_text, show_default=False)
        else:
            base = (
                info.annotation
                if info.annotation in (int, float, str)
                else next((t for t in getattr(info.annotation, "__args__", ()) if t in (int, float, str)), str)
            )
            kind, option = Optional[base], typer.Option(None, flag, help=help_text, show_default=False)
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind))
    return params


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
    from rankwise.training.config import load_run_config
    from rankwise.workflows import run_train

    if nproc > 1:
        _torchrun(nproc)
    if recipe is not None:
        from rankwise.training.recipes import recipe_options

        options = {k: v for k, v in options.items() if v is not None}
        options = recipe_options(recipe, teacher) | options
    elif teacher is not None:
        raise RankwiseError("--teacher goes with --recipe (or give it inside --negatives, e.g. bm25:teacher=DIR)")
    job = load_run_config(
        config, run={"data": data, "split": split, "train_file": train_file, "eval_split": eval_split}, **options
    )
    run = job.run
    if run.data is None:
        raise RankwiseError("--data is required (or a config.toml whose [run] table names it)")
    summary = run_train(
        _data_folder(run.data),
        out,
        job.train,
        split=run.split,
        train_file=run.train_file,
        eval_split=run.eval_split,
        resume=resume,
        overwrite=overwrite,
        allow_missing=allow_missing,
    )
    if "after" in summary:
        results.print(_table(f"{run.data} {run.eval_split}", {"before": summary["before"], "after": summary["after"]}))
    results.print(f"run folder: {out} (model/, report.html, metrics.json)")


def _torchrun(nproc: int) -> None:
    """Run this very command again under ``torchrun --nproc-per-node N`` (without ``--nproc``) and exit with its status."""
    import os
    import subprocess

    args, skip = [], False
    for a in sys.argv[1:]:
        if skip:
            skip = False
            continue
        if a == "--nproc":
            skip = True
            continue
        if a.startswith("--nproc="):
            continue
        args.append(a)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "rankwise.cli",
        *args,
    ]
    env = {
        **os.environ,
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc))),
    }
    raise typer.Exit(subprocess.call(cmd, env=env))


def _data_folder(data: str | Path) -> Path:
    """A BEIR folder, or the built-in stdlib-code (built and cached on first use)."""
    if str(data) == DEFAULT_DATASET:
        from rankwise.data.stdlib_code import ensure_built

        return ensure_built()
    return Path(data)


def _with_config_options(fn: Callable) -> Callable:
    sig = inspect.signature(fn, eval_str=True)
    fixed = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    params = fixed + _config_options()
    fn.__signature__ = sig.replace(parameters=params)
    fn.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
    return fn


typer_app.command("train")(_with_config_options(train_cmd))


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
    from rankwise.data import load_beir
    from rankwise.training.recipes import AR2Schedule, ar2

    schedule = AR2Schedule(
        rounds=rounds,
        depth=depth,
        candidates=candidates,
        ranker_steps=ranker_steps,
        retriever_steps=retriever_steps,
    )
    final = ar2(retriever, ranker, load_beir(_data_folder(data), split).own_split(), out, schedule, log=console.print)
    results.print(f"retriever: {final}  ranker: {out / 'ranker'}")


def ltr_train_cmd(
    train: str = typer.Option(..., help="training file, or a split name inside --data (vali -> vali.txt)"),
    out: Path = typer.Option(..., help="run folder (model/, metrics.json, run.trec)"),
    data: Optional[Path] = typer.Option(None, help="LETOR folder the split names are read from"),
    valid: Optional[str] = typer.Option(None, help="validation file or split [default: --valid-share of train]"),
    valid_share: float = typer.Option(0.2, min=0.01, max=0.9, help="queries held out of train for validation"),
    test: Optional[str] = typer.Option(None, help="test file or split, scored with the best-on-validation model"),
    scorer: str = typer.Option("mlp", help="linear | mlp | attention (self-attention across the list)"),
    normalize: str = typer.Option("query", help="query (min-max per query) | global (z-scores) | none"),
    resume: bool = typer.Option(False, help="continue from the last checkpoint in --out"),
    overwrite: bool = typer.Option(False, help="clear a non-empty --out first"),
    **options: Any,
) -> None:
    """Train a feature scorer with any loss of the library; the best weights on validation are kept."""
    from rankwise.training.config import load_config
    from rankwise.workflows import letor_path, run_ltr_train

    defaults = {"lr": 1e-3, "batch_size": 16, "steps": 300, "weight_decay": 0.0, "loss": "listnet"}
    cfg = load_config(**(defaults | {k: v for k, v in options.items() if v is not None}))
    summary = run_ltr_train(
        letor_path(train, data),
        out,
        cfg,
        scorer=scorer,
        normalize=normalize,
        valid_file=letor_path(valid, data) if valid else None,
        valid_share=valid_share,
        test_file=letor_path(test, data) if test else None,
        overwrite=overwrite,
        resume=resume,
    )
    columns = {"valid": summary["valid"]} | ({"test": summary["test"]} if "test" in summary else {})
    results.print(_table(f"{scorer} + {cfg.loss} (best step {summary['best_step']})", columns))
    results.print(f"run folder: {out} (model/, metrics.json" + (", run.trec, qrels.tsv)" if test else ")"))


ltr_app.command("train")(_with_config_options(ltr_train_cmd))


@ltr_app.command("eval")
def ltr_eval_cmd(
    model: Path = typer.Option(..., help="a model folder written by rankwise ltr train (RUN/model)"),
    test: str = typer.Option(..., help="LETOR file, or a split name inside --data"),
    out: Path = typer.Option(..., help="run folder to write"),
    data: Optional[Path] = typer.Option(None, help="LETOR folder the split name is read from"),
    overwrite: bool = typer.Option(False),
) -> None:
    """Score a LETOR file with a trained scorer: nDCG@5, nDCG@10, MAP (trec_eval conventions)."""
    from rankwise.workflows import letor_path, run_ltr_eval

    metrics = run_ltr_eval(model, letor_path(test, data), out, overwrite=overwrite)
    results.print(_table(str(test), {str(model): metrics}))


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
    from rankwise.training.config import load_config, tomllib
    from rankwise.workflows import run_sweep

    named = None
    if recipes is not None:
        try:
            named = tomllib.loads(recipes.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise RankwiseError(f"{recipes}: {exc}") from None
    res = run_sweep(
        _data_folder(data),
        out,
        budget,
        base=load_config(config),
        recipes=named,
        dev_split=dev_split,
        test_split=test_split,
        eta=eta,
    )
    table = Table(title=f"sweep on {data} ({dev_split}), last round")
    for col in ("recipe", "steps", "dev nDCG@10", "95% CI"):
        table.add_column(col)
    for row in res.rounds[-2] + res.rounds[-1] if len(res.rounds) > 1 else res.rounds[-1]:
        table.add_row(
            row["recipe"], str(row["steps"]), f"{row['ndcg@10']:.4f}", f"[{row['ci'][0]:.3f}, {row['ci'][1]:.3f}]"
        )
    results.print(table)
    results.print(
        f"chosen on dev: {res.best} ({res.steps_used} of {budget} steps used); config: {out / 'best.toml'}; "
        f"test nDCG@10 (the sweep's only test figure): {res.test.get('ndcg@10', float('nan')):.4f}"
    )


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
    retriever: str = typer.Option("dense", help="dense (the --model) or bm25 (a baseline on the same data)"),
    overwrite: bool = typer.Option(False, help="clear a non-empty --out first (a run folder never mixes two runs)"),
    run: Optional[Path] = typer.Option(
        None, help="score an existing run instead (a TREC file or a run folder: eval, train, rerank)"
    ),
    metrics_list: str = typer.Option("ndcg@10,mrr@10,recall@100,map", "--metrics", help="with --run: metric names"),
    ray: Optional[str] = typer.Option(
        None, help="encode the corpus on a Ray cluster (an address, 'auto', or 'local' to start one)"
    ),
    workers: int = typer.Option(2, min=1, help="with --ray: encoder actors (one model copy each)"),
) -> None:
    """Retrieve with a dual encoder (or BM25) and score the run as trec_eval does; --run scores a run
    that exists (e.g. a rerank folder), with the qrels its folder names."""
    if run is not None:
        from rankwise.data.runs import check_queries, load_run, resolve_qrels
        from rankwise.metrics import evaluate

        loaded = load_run(run)
        judgements, source = resolve_qrels(
            [loaded], data=_data_folder(data) if data else None, split=split if data else None
        )
        check_queries(loaded, judgements)
        results.print(_table(source, {loaded.name: evaluate(judgements, loaded.run, _metric_list(metrics_list))}))
        return
    if data is None or out is None:
        raise RankwiseError("--data and --out are required (or --run to score an existing run)")
    from rankwise.workflows import run_eval

    metrics = run_eval(
        _data_folder(data),
        split,
        out,
        model_name=model,
        k=k,
        allow_missing=allow_missing,
        max_length=max_length,
        device=device,
        retriever=retriever,
        overwrite=overwrite,
        ray=ray,
        workers=workers,
    )
    label = "bm25" if retriever == "bm25" else model or "all-MiniLM-L6-v2"
    results.print(_table(f"{data} ({split})", {label: metrics}))
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
        None, help="first stage: a dual-encoder folder or name, or bm25 [default: packaged all-MiniLM-L6-v2]"
    ),
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
    from rankwise.workflows import run_rerank

    if run is not None and retriever is not None:
        raise RankwiseError("give --retriever or --run (a first stage from a run file), not both")
    summary = run_rerank(
        _data_folder(data),
        split,
        out,
        reranker=reranker,
        retriever=retriever,
        first_run=run,
        depth=depth,
        interpolate=interpolate,
        allow_missing=allow_missing,
        device=device,
        overwrite=overwrite,
    )
    results.print(_table(f"{data} ({split})", {"first stage": summary["first"], "reranked": summary["reranked"]}))
    lat = summary["latency"]
    results.print(
        f"latency per query: first stage {lat['first_ms_mean']:.1f} ms, reranker {lat['second_ms_mean']:.1f} ms "
        f"(p95 {lat['second_ms_p95']:.1f} ms)"
    )
    results.print(f"run folder: {out} (run.trec, run-first.trec, metrics.json, latency.json, report.html)")


def _metric_list(text: str) -> list[str]:
    from rankwise.metrics import parse_metric

    names = [m.strip() for m in text.split(",") if m.strip()]
    for m in names:
        parse_metric(m)  # a clear error for an unknown name
    return names


@typer_app.command("compare")
def compare_cmd(
    runs: list[Path] = typer.Argument(..., help="run folders (with run.trec and config.toml) or TREC run files"),
    baseline: Optional[str] = typer.Option(None, help="run to compare against, by path or name [default: the first]"),
    qrels: Optional[Path] = typer.Option(
        None, help="qrels file (BEIR TSV or TREC) [default: from the run folders' config]"
    ),
    data: Optional[Path] = typer.Option(None, help="BEIR folder whose qrels/<split>.tsv to use"),
    split: Optional[str] = typer.Option(None, help="qrels split with --data [default: the run folder's, else test]"),
    metrics: str = typer.Option("ndcg@10,mrr@10,recall@100,map", help="comma-separated metric names"),
    test: str = typer.Option("t", help="significance test: t (paired t-test) or fisher (randomization)"),
    alpha: float = typer.Option(0.05, min=1e-6, max=0.5),
    resamples: int = typer.Option(10_000, min=100, help="bootstrap resamples and randomization permutations"),
    seed: int = typer.Option(0),
    out: Optional[Path] = typer.Option(None, help="also write the table as markdown (and .json beside it)"),
    lenient: bool = typer.Option(False, help="drop bad run lines and unjudged queries with a counted warning"),
    common: bool = typer.Option(False, help="runs covering different judged queries: compare over the common ones"),
) -> None:
    """Metrics per run with confidence intervals, and significance against a baseline."""
    from rankwise.data.runs import align_queries, check_queries, load_run, resolve_qrels
    from rankwise.io import write_json, write_text
    from rankwise.metrics.compare import compare_runs
    from rankwise.metrics.significance import TESTS

    if test not in TESTS:
        raise RankwiseError(f"--test {test!r}: choose one of {', '.join(TESTS)}")
    names = _metric_list(metrics)
    if out is not None:
        from rankwise.io import check_writable

        check_writable(out, is_dir=False)
    loaded = [load_run(r, lenient=lenient) for r in runs]
    seen: dict[str, int] = {}
    for r in loaded:  # two runs with the same folder name stay apart
        seen[r.name] = seen.get(r.name, 0) + 1
        if seen[r.name] > 1:
            r.name = f"{r.name}#{seen[r.name]}"
    judgements, source = resolve_qrels(loaded, qrels=qrels, data=data, split=split)
    loaded = [check_queries(r, judgements, lenient=lenient) for r in loaded]
    judgements, note = align_queries(loaded, judgements, common=common)
    if note:
        source = f"{source}, {note}"
    base = loaded[0].name
    if baseline is not None:
        match = [
            r.name
            for r in loaded
            if r.name == baseline or str(r.path) == baseline or (r.folder and str(r.folder) == baseline.rstrip("/"))
        ]
        if not match:
            raise RankwiseError(
                f"--baseline {baseline!r} is not one of the runs given: {', '.join(r.name for r in loaded)}"
            )
        base = match[0]
    res = compare_runs(
        judgements,
        {r.name: r.run for r in loaded},
        baseline=base,
        metrics=names,
        test=test,
        alpha=alpha,
        resamples=resamples,
        seed=seed,
    )
    table = Table(title=f"{len(loaded)} runs on {source}: mean [{100 * (1 - alpha):.0f}% CI], Δ vs {base}, p")
    table.add_column("run")
    for m in names:
        table.add_column(m, justify="right")
    for name, row in res.cells.items():
        cells = []
        for m in names:
            c = row[m]
            text = f"{c.mean:.4f} [{c.ci[0]:.3f}, {c.ci[1]:.3f}]"
            if name != base:
                mark = res.marker(name, m)
                color = "green" if mark == "▲" else "red" if mark == "▼" else "dim"
                text += f"\n[{color}]{c.delta:+.4f} p={c.p_adjusted:.3g} {mark}[/]"
            cells.append(text)
        table.add_row(escape(name) + (" (baseline)" if name == base else ""), *cells)
    results.print(table)
    test_name = "paired t-test" if test == "t" else "Fisher randomization test"
    results.print(
        f"{res.n_queries} queries; {test_name}"
        + (", Holm-corrected over the runs" if len(loaded) > 2 else "")
        + f"; ▲/▼ significant at alpha={alpha}."
    )
    if out is not None:
        write_text(out, res.markdown() + "\n")
        write_json(
            out.with_suffix(".json"),
            {
                "qrels": source,
                "baseline": base,
                "test": test,
                "alpha": alpha,
                "queries": res.n_queries,
                "runs": {n: {m: c.__dict__ for m, c in row.items()} for n, row in res.cells.items()},
            },
        )
        results.print(f"wrote {out}")


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
    from rankwise.report.run_report import build_report

    md, page = build_report(
        run_dir, baseline=baseline, qrels=qrels, data=data, split=split, lenient=lenient, worst=worst
    )
    results.print(f"wrote {page} and {md}")


@typer_app.command("mine")
def mine_cmd(
    data: Path = typer.Option(..., help="BEIR folder"),
    out: Path = typer.Option(..., help="training JSONL to write (id form, with ranks, scores, teacher scores)"),
    split: str = typer.Option("train", help="qrels split whose queries get negatives"),
    method: str = typer.Option("bm25", help="bm25 or dense"),
    k: int = typer.Option(7, min=1, help="negatives per query"),
    window: str = typer.Option("1-100", help="ranks a-b to draw from (1-based, inclusive); 11-100 skips the top 10"),
    sampling: str = typer.Option("top", help="top (first k by rank) or uniform (k at random from the window)"),
    margin: Optional[float] = typer.Option(
        None, help="drop candidates scoring within this margin of the lowest positive"
    ),
    margin_mode: str = typer.Option(
        "absolute", help="absolute (s <= s_pos - margin) or relative (s <= s_pos * (1 - margin))"
    ),
    fill_depth: int = typer.Option(
        0,
        min=0,
        help="a query the margin guard leaves short of k takes guarded candidates from below the window, down to this rank",
    ),
    teacher: Optional[str] = typer.Option(
        None, help="cross-encoder or bi-encoder folder ('default': all-MiniLM-L6-v2) to filter and score"
    ),
    teacher_margin: float = typer.Option(
        0.0, help="drop candidates the teacher scores above its lowest positive minus this"
    ),
    model: Optional[str] = typer.Option(None, help="dense retriever [default: packaged all-MiniLM-L6-v2]"),
    max_length: int = typer.Option(256, help="dense: token limit for queries and documents"),
    code: bool = typer.Option(False, help="BM25: split identifiers (read_file -> read file) for code corpora"),
    seed: int = typer.Option(42),
    lenient: bool = typer.Option(False, help="skip queries without a positive with a counted warning"),
    ray: Optional[str] = typer.Option(
        None, help="dense: encode the corpus on a Ray cluster (an address, 'auto', or 'local' to start one)"
    ),
    workers: int = typer.Option(2, min=1, help="with --ray: encoder actors (one model copy each)"),
) -> None:
    """Mine hard negatives (BM25 or dense) for a training split; resumable, written atomically."""
    from rankwise.data import load_beir
    from rankwise.negatives.mining import MineOptions, mine
    from rankwise.spec import convert

    try:
        opts = MineOptions(
            method=method,
            k=k,
            window=convert("--window", "window", window, "tuple[int, int]"),
            sampling=sampling,
            margin=margin,
            margin_mode=margin_mode,
            fill_depth=fill_depth,
            teacher=teacher,
            teacher_margin=teacher_margin,
            model=model,
            seed=seed,
            max_length=max_length,
            code=code,
        )
    except ValueError as exc:
        raise RankwiseError(f"mine: {exc}") from None
    from rankwise.io import check_writable

    check_writable(out, is_dir=False)
    dataset = load_beir(_data_folder(data), split).own_split()
    embeddings = None
    if ray is not None and method == "dense":
        from rankwise.index.distributed_encode import corpus_embeddings

        embeddings = corpus_embeddings(
            dataset, model, address=ray, workers=workers, max_length=max_length, log=console.print
        )
    mine(dataset, opts, out, lenient=lenient, embeddings=embeddings)
    results.print(f"wrote {out} (statistics in {out}.stats.json)")


@typer_app.command("encode")
def encode_cmd(
    data: Path = typer.Option(..., help="BEIR folder (or stdlib-code)"),
    out: Path = typer.Option(..., help="store folder: embeddings.f32 (memory-mapped) + manifest.json"),
    split: Optional[str] = typer.Option(None, help="keep the documents of this split (stdlib-code's) [default: all]"),
    model: Optional[str] = typer.Option(None, help="dual encoder [default: packaged all-MiniLM-L6-v2]"),
    max_length: Optional[int] = typer.Option(None, help="token limit for documents [default: the model's]"),
    shard_size: int = typer.Option(50_000, min=1, help="documents a shard (the unit a resumed run skips)"),
    ray: Optional[str] = typer.Option(None, help="encode on a Ray cluster: an address, 'auto', or 'local'"),
    workers: int = typer.Option(2, min=1, help="with --ray: encoder actors (one model copy each)"),
) -> None:
    """Encode a corpus into an on-disk embedding store, shard by shard; a killed run resumes."""
    from rankwise.data import load_beir
    from rankwise.data.beir import load_corpus
    from rankwise.data.jsonl import find_file

    folder = _data_folder(data)
    corpus = load_beir(folder, split).own_split().corpus if split else load_corpus(find_file(folder, "corpus.jsonl"))
    texts = [doc.full_text for doc in corpus.values()]
    if ray is not None:
        from rankwise.index.distributed_encode import ray_store

        store = ray_store(
            out,
            model,
            texts,
            address=ray,
            workers=workers,
            max_length=max_length,
            shard_size=shard_size,
            log=console.print,
        )
    else:
        from rankwise.index.retrieve import embeddings_key
        from rankwise.index.store import EmbeddingStore
        from rankwise.models import BiEncoder

        m = BiEncoder.load(model, query_max_length=max_length, doc_max_length=max_length)
        store = EmbeddingStore.build(
            out,
            lambda batch: m.encode(batch, "doc", batch_size=128),
            texts,
            dim=m.backbone.config.hidden_size,
            model_key=embeddings_key(m, ["doc"]),
            shard_size=shard_size,
            log=console.print,
        )
    n, dim = store.shape
    results.print(f"wrote {out}: {n} embeddings of dimension {dim} ({store.manifest['shards']} shards)")


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
    results.print(f"unpacked to {path}")


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
    results.print((path / "BUILD.json").read_text())


@data_app.command("inspect")
def data_inspect(
    folder: Path = typer.Argument(..., help="BEIR folder"),
    model: Optional[str] = typer.Option(
        None, help="model folder whose tokenizer counts long documents [default: all-MiniLM-L6-v2]"
    ),
    max_length: int = typer.Option(256, help="report documents longer than this many tokens (0: skip)"),
) -> None:
    """Counts, length statistics, label distribution and the problems found."""
    from rankwise.data.inspect import inspect_dataset

    rep = inspect_dataset(folder, model=model, max_length=max_length or None)
    results.print(f"[bold]{rep.path}[/]: {rep.documents} documents, {rep.queries} queries")
    for label, stats in (("document words", rep.doc_words), ("query words", rep.query_words)):
        results.print(f"  {label}: " + ", ".join(f"{k} {v:.0f}" for k, v in stats.items()))
    table = Table(title="splits")
    for col in ("split", "queries", "judgements", "no positive", "labels", "positives/query"):
        table.add_column(col)
    for s in rep.splits:
        table.add_row(
            s.split,
            str(s.queries),
            str(s.judgements),
            str(s.queries_without_positive),
            ", ".join(f"{k}: {v}" for k, v in s.labels.items()),
            f"mean {s.positives_per_query['mean']:.2f}",
        )
    results.print(table)
    if rep.problems:
        results.print("[yellow]problems:[/]")
        for p in rep.problems:
            results.print(f"  - {p}")
    else:
        results.print("no problems found")


# library arguments whose command-line flag has another name
_FLAG_FOR = {"corpus": "data", "out_dir": "out"}


def cli_message(message: str) -> str:
    """A library error in command-line terms: ``allow_missing=True`` -> ``--allow-missing``,
    ``qrels=FILE`` -> ``--qrels FILE``, ``corpus=`` -> ``--data``."""
    import typer.main

    commands = list(typer.main.get_command(typer_app).commands.values())
    commands += list(getattr(next((c for c in commands if c.name == "data"), None), "commands", {}).values())
    flags = {p.name for cmd in commands for p in getattr(cmd, "params", [])}

    def flag(name: str) -> str | None:
        name = _FLAG_FOR.get(name, name)
        return "--" + name.replace("_", "-") if name in flags else None

    def swap(m: re.Match) -> str:
        name, value = m.group(1), m.group(2)
        f = flag(name)
        if f is None:
            return m.group(0)
        return f if value in ("True", "") else f"{f} {value}"

    return re.sub(r"\b([a-z_]+)=(True|[A-Z][A-Z_]*|)(?=[\s),;]|$)", swap, message)


def app() -> None:
    """Entry point: user errors print one clear line, not a traceback."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        typer_app()
    except RankwiseError as exc:
        # one unwrapped line, and no rich markup read into the message (it may hold "[...]")
        console.print(f"[red]error:[/] {escape(cli_message(str(exc)))}", soft_wrap=True, highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    app()

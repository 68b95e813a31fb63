"""The ``rankwise data`` and ``rankwise ltr`` command groups."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from rankwise.cli_support import DEFAULT_DATASET, _data_folder, _table, _with_config_options
from rankwise.errors import RankwiseError
from rankwise.progress import results

data_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Get, build and inspect datasets.")
ltr_app = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="Learning to rank on feature vectors (SVMlight / LETOR files)."
)


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
    from rankwise.jobs.ltr import letor_path, ltr_train
    from rankwise.training.config import load_config

    cfg = load_config(**(LTR_DEFAULTS | {k: v for k, v in options.items() if v is not None}))
    paths = [letor_path(p, data) if p else None for p in (train, valid, test)]
    job = ltr_train(
        paths[0], out, cfg, scorer=scorer, normalize=normalize, valid_file=paths[1], valid_share=valid_share,
        test_file=paths[2], overwrite=overwrite, resume=resume,
    )  # fmt: skip
    columns = {"valid": job.valid} | ({"test": job.test} if job.test else {})
    results.print(_table(f"{scorer} + {cfg.loss} (best step {job.best_step})", columns))
    results.print(f"run folder: {out} (model/, metrics.json" + (", run.trec, qrels.tsv)" if test else ")"))


# a feature scorer's defaults (its --help shows these, not the dual encoder's)
LTR_DEFAULTS = {"lr": 1e-3, "batch_size": 16, "steps": 300, "weight_decay": 0.0, "loss": "listnet"}
LTR_SKIP = {"kind", "model", "query_max_length", "doc_max_length", "pair_max_length", "negatives", "batching"}
LTR_SKIP |= {"false_negatives", "curriculum", "same_text_same_doc", "chunk_tokens", "length_bucket", "cache_chunk"}
LTR_SKIP |= {"activation_checkpointing", "negatives_per_query", "head_lr_scale", "keep_final_checkpoint"}
ltr_app.command("train")(_with_config_options(ltr_train_cmd, defaults=LTR_DEFAULTS, skip=LTR_SKIP))


@ltr_app.command("eval")
def ltr_eval_cmd(
    model: Path = typer.Option(..., help="a model folder written by rankwise ltr train (RUN/model)"),
    test: str = typer.Option(..., help="LETOR file, or a split name inside --data"),
    out: Path = typer.Option(..., help="run folder to write"),
    data: Optional[Path] = typer.Option(None, help="LETOR folder the split name is read from"),
    overwrite: bool = typer.Option(False),
) -> None:
    """Score a LETOR file with a trained scorer: nDCG@5, nDCG@10, MAP (trec_eval conventions)."""
    from rankwise.jobs.ltr import letor_path, ltr_eval

    job = ltr_eval(model, letor_path(test, data), out, overwrite=overwrite)
    results.print(_table(str(test), {str(model): job.metrics}))


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


def adapt_cmd(
    data: str = typer.Option(..., help="BEIR folder (or stdlib-code): its corpus.jsonl alone is read for training"),
    out: Path = typer.Option(..., help="run folder (model/, pseudo_queries.jsonl, metrics.json)"),
    method: str = typer.Option(
        "crop",
        help="crop (a span of the document) | crop-out (the span, the document less it as positive) | ict "
        "(inverse cloze) | generate (doc2query, --generator)",
    ),
    generator: Optional[str] = typer.Option(None, help="generate: a causal or seq2seq LM folder or hub name"),
    per_doc: int = typer.Option(1, min=1, help="pseudo-queries a document"),
    filter_k: int = typer.Option(
        10, min=0, help="keep a pseudo-query if the starting model ranks its document in its top k (0: keep all)"
    ),
    filter_by: str = typer.Option(
        "model", help="the filter's retriever: model (the starting model) | hybrid (it and BM25, CombSUM over min-max)"
    ),
    eval_split: Optional[str] = typer.Option(None, help="a qrels split to measure before and after (never trained on)"),
    overwrite: bool = typer.Option(False, help="clear a non-empty --out first"),
    **options: Any,
) -> None:
    """Adapt a dual encoder to a corpus without judgements: pseudo-queries from the corpus, filtered by
    a round trip through the starting model (or it and BM25), trained with any loss and negatives
    strategy (every TrainConfig flag)."""
    from rankwise.jobs.adapt import adapt
    from rankwise.training.config import load_config

    cfg = load_config(**{k: v for k, v in options.items() if v is not None})
    job = adapt(_data_folder(data), out, cfg, method=method, generator=generator, per_doc=per_doc, filter_k=filter_k,
                filter_by=filter_by, eval_split=eval_split, overwrite=overwrite)  # fmt: skip
    results.print(f"{job.examples} pseudo-queries kept, {job.steps} steps in {job.seconds:.0f} s")
    if job.after is not None:
        results.print(_table(f"{data} ({eval_split})", {"before": job.before, "after": job.after}))
    results.print(f"run folder: {out}")

"""``rankwise adapt``: adapt a dual encoder to a corpus without judgements: pseudo-queries cut from
the corpus (:mod:`rankwise.data.pseudo`), kept when the starting model finds their document again,
then trained with any loss, negatives strategy (e.g. BM25 hard negatives over the same corpus) and
false-negative control. No qrels are read for training; an ``eval_split`` is read to measure only."""

from __future__ import annotations

import json
from pathlib import Path

from rankwise.data.beir import load_beir, load_corpus
from rankwise.data.jsonl import find_file
from rankwise.errors import ConfigError
from rankwise.io import write_text
from rankwise.jobs.folder import RunFolder, portable
from rankwise.jobs.train import TrainJob, finish_training, new_model, train_with_progress
from rankwise.metrics.model import evaluate_model
from rankwise.training import TrainConfig


def adapt(
    data: str | Path,
    out: str | Path,
    cfg: TrainConfig,
    *,
    method: str = "crop",
    generator: str | None = None,
    per_doc: int = 1,
    filter_k: int = 10,
    filter_by: str = "model",
    eval_split: str | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
) -> TrainJob:
    """Pseudo-queries from ``data``'s corpus (``method``: crop, crop-out, ict, or generate with the LM in
    ``generator``; ``per_doc`` a document), those whose document the starting model (``filter_by="model"``)
    or it and BM25 fused (``"hybrid"``) rank in the top ``filter_k`` (0: all), trained as ``cfg`` says."""
    from rankwise.data.pseudo import FILTERS, consistent, crop_queries, generate_queries, pseudo_dataset

    if filter_by not in FILTERS:
        raise ConfigError(f"adapt: --filter-by {filter_by!r}: expected one of {', '.join(FILTERS)}")
    if (method == "generate") != bool(generator):
        raise ConfigError("adapt: --method generate takes --generator (a causal or seq2seq LM), and only it does")

    corpus = load_corpus(find_file(Path(data), "corpus.jsonl"))
    eval_ds = load_beir(data, eval_split, corpus=corpus).own_split() if eval_split else None
    with RunFolder.open(out, overwrite=overwrite) as folder:
        model = new_model(cfg)
        if method == "generate":
            made = generate_queries(corpus, generator, per_doc=per_doc, seed=cfg.seed, device=cfg.device)
        else:
            made = crop_queries(corpus, method=method, per_doc=per_doc, seed=cfg.seed)
        examples = consistent(made, model, corpus, filter_k, cache=True, by=filter_by) if filter_k else made
        write_text(
            folder / "pseudo_queries.jsonl",
            "".join(json.dumps({"query": e.query, "positive_ids": [e.positives[0][0]]}) + "\n" for e in examples),
        )
        before = evaluate_model(model, eval_ds, cache=True) if eval_ds is not None else None
        corpus_ds = pseudo_dataset(corpus, examples, Path(data))  # mining strategies search it for the pseudo-queries
        result = train_with_progress(model, examples, cfg, folder.path, False, show_progress, train_ds=corpus_ds)
        finish_training(model, result, folder)
        job = TrainJob(cfg.steps, len(examples), round(result.seconds, 1), folder.path)
        summary = {"pseudo_queries": len(made), "kept": len(examples), "steps": cfg.steps, "seconds": job.seconds}
        after = evaluate_model(model, eval_ds) if eval_ds is not None else None
        if eval_ds is not None:
            job.before, job.after = before.metrics, after.metrics
            summary |= {"before": job.before, "after": job.after}
        folder.write_json("metrics.json", summary)
        run = {"command": "adapt", "data": portable(data), "method": method, "per_doc": per_doc}
        run |= {"generator": portable(generator)} if generator else {}
        run |= {"filter_k": filter_k} | ({"filter_by": filter_by} if filter_by != "model" else {})
        folder.write_config(run | {"eval_split": eval_split}, cfg)
        evals = (before, after, eval_ds) if eval_ds is not None else None
        _model_card(folder, model, cfg, Path(data), summary, evals, _command(run, cfg))
        return job


def _command(run: dict, cfg: TrainConfig) -> str:
    """The ``rankwise adapt`` command line that makes this run again (the options that differ from the defaults)."""
    parts = ["rankwise adapt --out NEW_RUN"] + [
        f"--{k.replace('_', '-')} {v}" for k, v in run.items() if k != "command"
    ]
    defaults = TrainConfig().to_toml_dict()
    for k, v in cfg.to_toml_dict().items():
        flag = k.replace("_", "-")
        if defaults.get(k) != v:
            parts.append((f"--{flag}" if v else f"--no-{flag}") if isinstance(v, bool) else f"--{flag} {v!r}")
    return " ".join(parts)


def _model_card(folder: RunFolder, model, cfg: TrainConfig, data: Path, summary: dict, evals, command: str) -> None:
    """``model/README.md``, as a training run writes it: the corpus's hash, the pseudo-queries, and
    the eval split's metrics against the starting model (where one was given)."""
    from rankwise.families import family_of
    from rankwise.metrics.compare import compare_runs
    from rankwise.metrics.ranking import DEFAULT_METRICS
    from rankwise.report.model_card import file_digests, write_model_card

    comparison = None
    if evals is not None:
        before, after, eval_ds = evals
        runs = {"starting model": before.run, "fine-tuned": after.run}
        comparison = compare_runs(eval_ds.qrels, runs, baseline="starting model", metrics=list(DEFAULT_METRICS))
    corpus = find_file(data, "corpus.jsonl")
    training = {k: summary[k] for k in ("pseudo_queries", "kept", "steps", "seconds")} | {"loss": cfg.loss}
    write_model_card(
        folder.model_dir,
        family=family_of(model).name,
        base_model=cfg.model or "sentence-transformers/all-MiniLM-L6-v2",
        data={"names": [corpus.name], "sha256": file_digests([corpus])},
        config=cfg.to_toml_dict(),
        training=training
        | {"negatives": cfg.negatives or "in-batch", "labels": "none (pseudo-queries from the corpus)"},
        comparison=comparison,
        command=command,
    )

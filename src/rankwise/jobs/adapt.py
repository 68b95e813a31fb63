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
    eval_split: str | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
) -> TrainJob:
    """Pseudo-queries from ``data``'s corpus (``method``: crop, ict, or generate with the LM in
    ``generator``; ``per_doc`` a document), those whose document the starting model ranks in its top
    ``filter_k`` (0: all), trained as ``cfg`` says."""
    from rankwise.data.pseudo import consistent, crop_queries, generate_queries, pseudo_dataset

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
        examples = consistent(made, model, corpus, filter_k) if filter_k else made
        write_text(
            folder / "pseudo_queries.jsonl",
            "".join(json.dumps({"query": e.query, "positive_ids": [e.positives[0][0]]}) + "\n" for e in examples),
        )
        before = evaluate_model(model, eval_ds, cache=True).metrics if eval_ds is not None else None
        corpus_ds = pseudo_dataset(corpus, examples, Path(data))  # mining strategies search it for the pseudo-queries
        result = train_with_progress(model, examples, cfg, folder.path, False, show_progress, train_ds=corpus_ds)
        finish_training(model, result, folder)
        job = TrainJob(cfg.steps, len(examples), round(result.seconds, 1), folder.path)
        summary = {"pseudo_queries": len(made), "kept": len(examples), "steps": cfg.steps, "seconds": job.seconds}
        if eval_ds is not None:
            job.before, job.after = before, evaluate_model(model, eval_ds).metrics
            summary |= {"before": job.before, "after": job.after}
        folder.write_json("metrics.json", summary)
        run = {"command": "adapt", "data": portable(data), "method": method, "per_doc": per_doc}
        run |= {"generator": portable(generator)} if generator else {}
        folder.write_config(run | {"filter_k": filter_k, "eval_split": eval_split}, cfg)
        return job

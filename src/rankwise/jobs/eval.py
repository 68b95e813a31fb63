"""``rankwise eval``: retrieve a split's top ``k`` with a model (or BM25) and score it as trec_eval
does; or score a run that exists (:func:`score_run_file`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rankwise.data import load_beir
from rankwise.errors import ConfigError
from rankwise.io import write_text
from rankwise.jobs.folder import RunFolder, portable
from rankwise.metrics import DEFAULT_METRICS
from rankwise.metrics.model import evaluate_model
from rankwise.progress import console
from rankwise.report.run_report import build_report


@dataclass
class EvalJob:
    metrics: dict[str, float]
    label: str  # the model's name, or bm25
    folder: Path
    frontier: Any = None  # with dims / precision: the :class:`~rankwise.metrics.frontier.Frontier`


@dataclass
class RunScore:
    metrics: dict[str, float]
    name: str  # the run's
    qrels: str  # where the judgements came from
    note: str = ""  # partial coverage, said


def check_limits(*, k: int | None = None, max_length: int | None = None) -> None:
    """Bad numbers are one line before any work."""
    if k is not None and k < 1:
        raise ConfigError(f"k={k}: documents retrieved per query must be at least 1", param="k")
    if max_length is not None and not 4 <= max_length <= 8192:
        raise ConfigError(f"max_length={max_length}: expected a token limit between 4 and 8192", param="max_length")


def _load_retriever(model_name, max_length, device, dataset):
    """The model a folder holds when its family retrieves (sparse, multi-vector), else a dual encoder."""
    from rankwise.families import find_family, load_model

    if model_name is not None and Path(str(model_name)).is_dir():
        model = load_model(model_name, device=device)
        family = find_family(model)
        if family is not None and family.retrieves and family.name != "bi-encoder":
            for side in ("query_max_length", "doc_max_length"):
                if max_length and hasattr(model.config, side):
                    setattr(model.config, side, max_length)
            return model
    return _load_dense(model_name, max_length, device, dataset)


def _load_dense(model_name, max_length, device, dataset):
    from rankwise.models import BiEncoder

    model = BiEncoder.load(model_name, query_max_length=max_length, doc_max_length=max_length, device=device)
    limit = model.backbone.config.max_position_embeddings
    if max_length is not None and max_length > limit:
        raise ConfigError(f"max_length={max_length}: {model.name} takes at most {limit} tokens", param="max_length")
    texts = [doc.full_text for doc in dataset.corpus.values()]
    cut = model.count_truncated(texts, "doc")
    if cut:
        console.print(
            f"{cut} of {len(texts)} documents are longer than {model.config.doc_max_length} tokens: "
            "their ends are not encoded (--max-length raises the limit)"
        )
    return model


def evaluate_split(
    data: str | Path,
    split: str,
    out: str | Path,
    *,
    model_name: str | None = None,
    k: int = 100,
    allow_missing: bool = False,
    max_length: int | None = None,
    device: str | None = None,
    retriever: str = "dense",
    fusion: str | None = None,
    dims: list[int] | None = None,
    precision: list[str] | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
    ray: str | None = None,
    workers: int = 2,
) -> EvalJob:
    """Retrieve the split's top ``k`` with ``model_name`` (``retriever="dense"``) or BM25 and score it.
    ``retriever="bm25+dense"`` (or any ``+``-joined first stages: ``dense`` is ``model_name``, or
    model folders) fuses them as ``fusion`` says (default ``rrf``; see
    :func:`~rankwise.index.fusion.parse_fusion`). ``ray``: encode the corpus on that Ray cluster first.
    ``dims`` / ``precision`` (e.g. [64, 128, 384], ["fp32", "int8", "binary"]): the cost-quality frontier
    of the model's embeddings instead (:func:`rankwise.metrics.frontier.frontier`)."""
    if dims is not None or precision is not None:
        return _evaluate_frontier(data, split, out, model_name, dims, precision, k, allow_missing, device, overwrite)
    if "+" in retriever:
        return _evaluate_fused(
            data, split, out, retriever, model_name, fusion, k, allow_missing, device, overwrite, show_progress
        )
    _check_single(retriever, fusion, model_name)
    check_limits(k=k, max_length=max_length)
    with RunFolder.open(out, overwrite=overwrite) as folder:
        dataset = load_beir(data, split, allow_missing=allow_missing).own_split()
        dense = retriever == "dense"
        model = _load_retriever(model_name, max_length, device, dataset) if dense else "bm25"
        label = model.name if dense else "bm25"
        embeddings = None
        if ray is not None and dense:
            from rankwise.index.distributed_encode import corpus_embeddings

            embeddings = corpus_embeddings(
                dataset,
                model_name,
                address=ray,
                workers=workers,
                max_length=max_length,
                loaded=model,
                log=console.print,
            )
        res = evaluate_model(model, dataset, k, show_progress=show_progress, cache=dense, embeddings=embeddings)
        folder.write_run("run.trec", res.run, tag=Path(str(model_name or label)).name if dense else "bm25")
        folder.write_json("metrics.json", res.metrics)
        folder.write_json("per_query.json", {"ndcg@10": res.per_query["ndcg@10"]})
        sides = ("query_max_length", "doc_max_length")
        lengths = {k: getattr(model.config, k) for k in sides if hasattr(model.config, k)} if dense else {}
        run = {"command": "eval", "data": str(Path(data).resolve()), "split": split, "retriever": retriever}
        folder.write_config(run | {"model": portable(model_name) if dense else None, "k": k, **lengths})
        build_report(
            folder.path,
            summary=f"Evaluation of {label} on {Path(data).name} ({split}): {len(dataset.qrels)} judged queries, "
            f"{len(dataset.corpus)} documents.",
            seed=0,
        )
        return EvalJob(res.metrics, label, folder.path)


def _check_single(retriever: str, fusion: str | None, model_name: str | None) -> None:
    """One first stage: dense (with ``model_name``) or BM25 (without), and nothing to fuse."""
    if fusion is not None:
        raise ConfigError(
            f"fusion={fusion}: fuses several retrievers; join them with +, e.g. bm25+dense", param="fusion"
        )
    if retriever not in ("dense", "bm25"):
        raise ConfigError(f"retriever={retriever}: expected dense, bm25, or several joined by +", param="retriever")
    if retriever == "bm25" and model_name is not None:
        raise ConfigError("retriever='bm25' takes no model: give model= with the dense retriever only")


def _evaluate_frontier(data, split, out, model_name, dims, precision, k, allow_missing, device, overwrite):
    """Every dims x precision cell: frontier.json, frontier.md, frontier.png in the run folder."""
    from rankwise.metrics.frontier import frontier
    from rankwise.report.plots import frontier as plot_frontier

    check_limits(k=k)
    with RunFolder.open(out, overwrite=overwrite) as folder:
        dataset = load_beir(data, split, allow_missing=allow_missing).own_split()
        model = _load_retriever(model_name, None, device, dataset)
        size = model.dim
        res = frontier(model, dataset, dims or [size], precision or ["fp32"], k=k)
        cells = {str(d): row for d, row in res.cells.items()}
        kept = {"baseline": res.full, "cells": cells, "caption": res.caption, "per_query": res.per_query}
        folder.write_json("frontier.json", kept)
        write_text(folder / "frontier.md", res.markdown() + "\n")
        plot_frontier(res.cells, folder / "frontier.png")
        run = {"command": "eval", "data": str(Path(data).resolve()), "split": split, "model": portable(model_name)}
        folder.write_config(run | {"dims": list(res.cells), "precision": precision or ["fp32"], "k": k})
        base = res.cells[size]["fp32"]
        return EvalJob({m: base[m] for m in ("ndcg@10", "recall@100")}, res.full, folder.path, frontier=res)


def _evaluate_fused(
    data, split, out, retriever, model_name, fusion, k, allow_missing, device, overwrite, show_progress
):
    """The fused first stage's top ``k``, scored; the run folder names each part and the fusion."""
    from rankwise.index.fusion import FusedStage, parse_fusion
    from rankwise.index.rerank import Pipeline, first_stage
    from rankwise.metrics.model import score_run

    check_limits(k=k)
    parts = [p.strip() for p in retriever.split("+")]
    with RunFolder.open(out, overwrite=overwrite) as folder:
        dataset = load_beir(data, split, allow_missing=allow_missing).own_split()
        stages = [first_stage(model_name if p == "dense" else p, device=device) for p in parts]
        stage = FusedStage(stages, parse_fusion(fusion or "rrf"))
        res = score_run(dataset, Pipeline(stage, depth=k).run(dataset, show_progress=show_progress).run)
        folder.write_run("run.trec", res.run, tag="fusion")
        folder.write_json("metrics.json", res.metrics)
        folder.write_json("per_query.json", {"ndcg@10": res.per_query["ndcg@10"]})
        named = [
            (portable(model_name) or "default") if p == "dense" else p if p == "bm25" else portable(p) for p in parts
        ]
        run = {"command": "eval", "data": str(Path(data).resolve()), "split": split, "retriever": retriever}
        folder.write_config(run | {"parts": [str(n) for n in named], "fusion": fusion or "rrf", "k": k})
        build_report(folder.path, summary=f"Evaluation of {stage.name} on {Path(data).name} ({split}).", seed=0)
        return EvalJob(res.metrics, stage.name, folder.path)


def score_run_file(
    run: str | Path,
    *,
    data: str | Path | None = None,
    split: str | None = None,
    metrics: list[str] | None = None,
    lenient: bool = False,
) -> RunScore:
    """Score a run that exists (a TREC file or a run folder) with the qrels its folder names, or
    ``data``'s ``split``; a run covering only some judged queries is scored over all of them (a
    missing query scores 0, as trec_eval -c does) and the note says how many it covers."""
    from rankwise.data.runs import check_queries, coverage_note, load_run, resolve_qrels
    from rankwise.metrics import evaluate

    loaded = load_run(run, lenient=lenient)
    judgements, source = resolve_qrels([loaded], data=data, split=split if data else None)
    check_queries(loaded, judgements, lenient=lenient)
    values = evaluate(judgements, loaded.run, list(metrics or DEFAULT_METRICS))
    return RunScore(values, loaded.name, source, coverage_note(loaded.run, judgements))

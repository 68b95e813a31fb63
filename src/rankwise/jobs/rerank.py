"""``rankwise rerank``: retrieve, then rerank; both stages' metrics and per-query latency."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rankwise.data import load_beir
from rankwise.errors import ConfigError
from rankwise.jobs.folder import RunFolder, portable
from rankwise.report.run_report import build_report


@dataclass
class RerankJob:
    first: dict[str, float]  # the first stage's metrics
    reranked: dict[str, float]
    latency: dict[str, float]  # per-query means and p95, ms
    folder: Path


def _portable_retriever(retriever: str | None) -> str | None:
    """``bm25``, a model folder, or several joined by ``+``, each folder made portable."""
    if retriever is None:
        return None
    return "+".join(p if p == "bm25" else str(portable(p)) for p in retriever.split("+"))


def rerank(
    data: str | Path,
    split: str,
    out: str | Path,
    *,
    reranker: str,
    retriever: str | None = None,
    first_run: str | Path | None = None,
    depth: int = 100,
    interpolate: float = 0.0,
    fusion: str | None = None,
    allow_missing: bool = False,
    device: str | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
) -> RerankJob:
    """Retrieve the top ``depth`` (a ``retriever`` model, ``"bm25"``, several joined by ``+`` and fused
    as ``fusion`` says, or a TREC ``first_run``), rerank
    with ``reranker`` (a model folder whose family reranks, its scores interpolated with the first
    stage's at weight ``interpolate``, or ``prf:...``)."""
    from rankwise.index.rerank import Pipeline, first_stage, second_stage
    from rankwise.metrics.model import score_run

    if first_run is not None and retriever is not None:
        raise ConfigError("give retriever= or first_run= (a first stage from a run file), not both")
    with RunFolder.open(out, overwrite=overwrite) as folder:
        dataset = load_beir(data, split, allow_missing=allow_missing).own_split()
        first = first_stage(retriever, run_file=first_run, device=device, fusion=fusion)
        second = second_stage(reranker, first=first, device=device, interpolate=interpolate)
        res = Pipeline(first, second, depth=depth).run(dataset, show_progress=show_progress)
        before, after = score_run(dataset, res.first), score_run(dataset, res.run)
        folder.write_run("run-first.trec", res.first, tag=Path(first.name).name or "first")
        folder.write_run("run.trec", res.run, tag=Path(second.name).name or "reranked")
        lat = res.latency_summary()
        folder.write_json("metrics.json", {"first": before.metrics, "reranked": after.metrics, "latency": lat})
        folder.write_json("per_query.json", {"ndcg@10": after.per_query["ndcg@10"]})
        folder.write_json("latency.json", res.latency_ms)
        folder.write_config(
            {
                "command": "rerank",
                "data": str(Path(data).resolve()),
                "split": split,
                "retriever": None if first_run else _portable_retriever(retriever),
                "fusion": fusion,
                "first_run": portable(first_run),
                "reranker": reranker if reranker.startswith("prf") else portable(reranker),
                "depth": depth,
                "interpolate": interpolate,
            }
        )
        build_report(
            folder.path,
            baseline=folder / "run-first.trec",
            summary=f"{first.name} top {depth} reranked by {second.name} on {Path(data).name} ({split}): nDCG@10 "
            f"{before.metrics['ndcg@10']:.4f} -> {after.metrics['ndcg@10']:.4f}; {lat.get('first_ms_mean', 0):.1f} ms "
            f"+ {lat.get('second_ms_mean', 0):.1f} ms a query.",
            seed=0,
        )
        return RerankJob(before.metrics, after.metrics, lat, folder.path)

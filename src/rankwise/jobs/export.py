"""``rankwise export``: a trained dual encoder to ONNX (and dynamic int8), checked against the
original on a split with exact metrics, a paired test and per-query CPU latency. An export that
is significantly worse than the original is reported as not good (users of other exporters found
"quantised model halved performance" only after deploying)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from rankwise.errors import ConfigError
from rankwise.jobs.folder import RunFolder, portable

METRICS = ["ndcg@10", "recall@100"]


@dataclass
class ExportJob:
    folder: Path
    graphs: list[Path]
    metrics: dict[str, dict[str, float]]  # variant (original, onnx, onnx-int8) -> metrics
    checks: dict[str, dict[str, float]]  # variant -> delta, p (paired t-test vs the original), p_holm
    latency_ms: dict[str, float]  # variant -> mean per-query latency (encode the query, search), CPU
    good: dict[str, bool]  # variant -> not significantly worse than the original on nDCG@10


def _latency(retriever, queries: list[str], k: int, sample: int = 100) -> float:
    times = []
    for q in queries[:sample]:  # one query at a time, as a service answers
        t0 = time.perf_counter()
        retriever.search([q], k, states=False)
        times.append(1000 * (time.perf_counter() - t0))
    return sum(times) / max(len(times), 1)


def export(
    model_dir: str | Path,
    out: str | Path,
    *,
    int8: bool = False,
    data: str | Path | None = None,
    split: str = "test",
    k: int = 100,
    alpha: float = 0.05,
    overwrite: bool = False,
) -> ExportJob:
    """Export ``model_dir`` to ONNX in ``out`` and, with ``data``, check every graph against the
    original on ``split`` (the corpus encoded by each; exact search)."""
    from rankwise.data import load_beir
    from rankwise.families import family_of, load_model
    from rankwise.index.retrieve import DenseRetriever, corpus_texts, search_run
    from rankwise.metrics.compare import compare_runs
    from rankwise.models.onnx_encoder import GRAPH, GRAPH_INT8, OnnxEncoder, export_onnx

    model = load_model(model_dir)
    if family_of(model).name != "bi-encoder":
        raise ConfigError(f"export --onnx takes a dual encoder's folder; {model_dir} holds a {family_of(model).name}")
    with RunFolder.open(out, overwrite=overwrite) as folder:
        graphs = export_onnx(model.cpu(), folder.path, int8=int8)
        job = ExportJob(folder.path, graphs, {}, {}, {}, {})
        if data is not None:
            dataset = load_beir(data, split).own_split()
            ids, texts = corpus_texts(dataset)
            variants = {"original": model, "onnx": OnnxEncoder(folder.path, GRAPH)}
            if int8:
                variants["onnx-int8"] = OnnxEncoder(folder.path, GRAPH_INT8)
            runs = {}
            for name, encoder in variants.items():
                retriever = DenseRetriever(encoder, ids, texts)
                runs[name] = search_run(retriever, dataset, k)
                job.latency_ms[name] = _latency(retriever, list(dataset.split_queries.values()), k)
            cmp = compare_runs(dataset.qrels, runs, baseline="original", metrics=METRICS, test="t", alpha=alpha)
            for name in variants:
                job.metrics[name] = {m: cmp.cells[name][m].mean for m in METRICS}
                c = cmp.cells[name]["ndcg@10"]
                job.checks[name] = {"delta": c.delta, "p": c.p, "p_holm": c.p_adjusted}
                job.good[name] = not (c.delta < 0 and c.p_adjusted < alpha)
        folder.write_json(
            "export.json",
            {"metrics": job.metrics, "checks": job.checks, "latency_ms": job.latency_ms, "good": job.good},
        )
        run = {"command": "export", "model": portable(model_dir), "int8": int8, "data": portable(data), "split": split}
        folder.write_config(run | {"k": k, "alpha": alpha})
        return job

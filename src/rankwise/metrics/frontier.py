"""The cost-quality frontier of a dual encoder: exact metrics of every (dimensions x precision)
cell, each with a paired test against the full-size fp32 embeddings, the index bytes, nDCG@10 per
query (for tests over several seeds) and the per-query search latency (one query at a time, exact
search; see :mod:`rankwise.index.quantized`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from rankwise.errors import ConfigError

METRICS = ("ndcg@10", "recall@100")


@dataclass
class Frontier:
    full: str  # the baseline cell, "<dims>/fp32"
    cells: dict[
        int, dict[str, dict[str, float]]
    ]  # dims -> precision -> ndcg@10, recall@100, index_bytes, query_ms, p, p_holm
    caption: str
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)  # "<dims>/<precision>" -> qid -> nDCG@10

    def markdown(self) -> str:
        lines = ["| dims | precision | nDCG@10 | Recall@100 | index bytes | ms / query | p vs " + self.full + " |"]
        lines.append("|---:|---|---:|---:|---:|---:|---:|")
        for dims, row in self.cells.items():
            for prec, c in row.items():
                lines.append(
                    f"| {dims} | {prec} | {c['ndcg@10']:.4f} | {c['recall@100']:.4f} | {c['index_bytes']:,} | "
                    f"{c['query_ms']:.2f} | {c['p_holm']:.3g} |"
                )
        return "\n".join([*lines, "", self.caption])


def frontier(model, dataset, dims: Sequence[int], precisions: Sequence[str], *, k: int = 100) -> Frontier:
    """Every cell of ``dims`` x ``precisions`` for ``model`` on ``dataset`` (a split with qrels); the
    model's full size at fp32 is always measured, as the baseline."""
    from rankwise.data.trec import ranked_run
    from rankwise.index.quantized import PRECISIONS, QuantizedIndex, prefix
    from rankwise.index.retrieve import cached_embeddings, corpus_texts
    from rankwise.metrics.compare import compare_runs
    from rankwise.metrics.ranking import evaluate_per_query

    ids, texts = corpus_texts(dataset)
    docs = cached_embeddings(model, texts)
    size = docs.shape[1]
    if any(d < 1 or d > size for d in dims) or any(p not in PRECISIONS for p in precisions):
        raise ConfigError(f"dims must be in 1..{size} and precisions among {', '.join(PRECISIONS)}", param="dims")
    qids = list(dataset.split_queries)
    queries = model.encode([dataset.split_queries[q] for q in qids], "query")
    normalize = bool(getattr(model.config, "normalize", False))
    grid = [(d, p) for d in sorted(set(dims)) for p in dict.fromkeys(precisions)]
    grid += [] if (size, "fp32") in grid else [(size, "fp32")]  # the baseline
    runs, sizes, latency = {}, {}, {}
    for d, p in grid:
        index = QuantizedIndex.build(prefix(docs, d, normalize), p)
        q = prefix(queries, d, normalize)
        rows, scores, times = [], [], []
        for i in range(len(qids)):  # one query at a time, as a search service answers
            t0 = time.perf_counter()
            r, s = index.search(q[i : i + 1], k)
            times.append(1000 * (time.perf_counter() - t0))
            rows.append(r[0])
            scores.append(s[0])
        name = f"{d}/{p}"
        runs[name] = ranked_run(qids, ids, np.array(rows), np.array(scores))
        sizes[name], latency[name] = index.nbytes, float(np.mean(times))
    full = f"{size}/fp32"
    cmp = compare_runs(dataset.qrels, runs, baseline=full, metrics=list(METRICS), test="t")
    per_query = {name: evaluate_per_query(dataset.qrels, run, ["ndcg@10"])["ndcg@10"] for name, run in runs.items()}
    cells: dict[int, dict[str, dict[str, float]]] = {}
    for name in runs:
        d, p = name.split("/")
        c = cmp.cells[name]
        cells.setdefault(int(d), {})[p] = {
            **{m: c[m].mean for m in METRICS},
            "index_bytes": sizes[name],
            "query_ms": latency[name],
            "p": c["ndcg@10"].p,
            "p_holm": c["ndcg@10"].p_adjusted,
        }
    caption = (
        f"{cmp.n_queries} queries, {len(ids)} documents, exact search over the stored codes. p: paired t-test of "
        f"nDCG@10 against {full}, Holm-corrected over the table's {(len(runs) - 1) * len(METRICS)} p-values."
    )
    return Frontier(full, cells, caption, per_query)

"""Retrieval measurements shared by the benchmarks that compare trained dual encoders over seeds.

``measure`` scores one model on one split the way the MW paper measures AUC (each query's
positives and its top-500 retrieved non-relevant documents, pooled over queries into one ROC),
beside nDCG@10, Recall@100 and MAP, and keeps what the significance tests need: per-query values
and each query's (positive scores, negative scores).
"""

from __future__ import annotations

import numpy as np

from rankwise.index.retrieve import corpus_texts, dense_run, embeddings_key
from rankwise.metrics.auc import auc, per_query_auc
from rankwise.metrics.ranking import evaluate_arrays

METRICS = ["ndcg@10", "recall@100", "map"]


def measure(model, ds, depth: int = 500, *, memo: dict | None = None) -> tuple[dict, dict]:
    """``(metrics, per_query)`` of ``model`` on split ``ds``; ``per_query`` holds each metric's
    per-query values, ``auc`` (per query) and ``pools`` (query -> [positive scores, negative scores]).
    ``memo``: corpus embeddings kept by :func:`embeddings_key` (weights, settings, texts), so that a
    model measured twice on one corpus (dev and test of SciFact, a curve's last point) encodes it once;
    only the latest entry is kept."""
    emb = None
    if memo is not None:
        texts = corpus_texts(ds)[1]
        key = embeddings_key(model, texts)
        if key not in memo:
            memo.clear()
            memo[key] = model.encode(texts, "doc")
        emb = memo[key]
    run = dense_run(model, ds, depth, show_progress=False, embeddings=emb)
    qids, values = evaluate_arrays(ds.qrels, run, METRICS)  # one pass: means and per-query values
    m = {name: float(v.mean()) if len(qids) else 0.0 for name, v in values.items()}
    per_query: dict = {name: dict(zip(qids, v.tolist())) for name, v in values.items()}
    per_query["auc"] = per_query_auc(ds.qrels, run)
    pools = {}
    for qid, judged in ds.qrels.items():
        ranking = run.get(qid, {})
        pools[qid] = (
            [s for d, s in ranking.items() if judged.get(d, 0) > 0],
            [s for d, s in ranking.items() if judged.get(d, 0) <= 0],
        )
    per_query["pools"] = pools
    m["pooled_auc"] = pooled_auc(pools, list(pools))
    m["per_query_auc"] = float(np.mean(list(per_query["auc"].values())))
    return m, per_query


def pooled_auc(pools: dict, qids: list[str]) -> float:
    """One ROC-AUC over the positives and negatives of ``qids`` (repeats count again)."""
    pos = [np.asarray(pools[q][0], dtype=np.float64) for q in qids]
    neg = [np.asarray(pools[q][1], dtype=np.float64) for q in qids]
    return auc(np.concatenate(pos), np.concatenate(neg))


def seed_averaged(runs: list[dict], key: str, qids: list[str]) -> np.ndarray:
    """Per-query values of ``key`` averaged over seeds (each run's ``per_query``)."""
    return np.mean([[r["per_query"][key].get(q, np.nan) for q in qids] for r in runs], axis=0)


def common_queries(runs: list[dict], key: str) -> list[str]:
    return sorted(set.intersection(*(set(r["per_query"][key]) for r in runs)))


def pooled_auc_ci(a_runs: list[dict], b_runs: list[dict] | None = None, *, resamples: int = 200) -> list[float]:
    """95% bootstrap interval over queries of the seed-mean pooled AUC of ``a_runs`` (or of its
    difference from ``b_runs``, seed by seed, the same queries drawn for both)."""
    qids = sorted(a_runs[0]["per_query"]["pools"])
    rng = np.random.default_rng(0)
    values = []
    for _ in range(resamples):
        pick = [qids[i] for i in rng.integers(0, len(qids), len(qids))]
        a = [pooled_auc(r["per_query"]["pools"], pick) for r in a_runs]
        b = [pooled_auc(r["per_query"]["pools"], pick) for r in b_runs] if b_runs else [0.0] * len(a)
        values.append(np.mean(np.subtract(a, b)))
    lo, hi = np.quantile(values, [0.025, 0.975])
    return [float(lo), float(hi)]


def shrink_pools(result: dict) -> dict:
    """A run's record as kept in the repository: pool scores at float32's 9 significant digits
    (the model's scores are float32, so no two compare differently and AUC is unchanged)."""
    pools = {
        q: [[float(f"{x:.9g}") for x in side] for side in pair] for q, pair in result["per_query"]["pools"].items()
    }
    return result | {"per_query": result["per_query"] | {"pools": pools}}

"""Ranking metrics equal to trec_eval (checked against pytrec-eval-terrier in the tests).

Conventions, all trec_eval's:

* A run's documents are ranked by descending score; ties are broken by descending docid
  (byte order), as trec_eval sorts them.
* A document is relevant when its grade >= 1; unjudged documents count as non-relevant.
* nDCG uses the grade itself as gain and 1/log2(rank + 1) as discount; the ideal ranking is
  built from all of the query's judgements (cut at the same k).
* P@k divides by k even when fewer than k documents were retrieved. Recall@k and MAP divide by
  the number of relevant documents judged for the query.
* MRR@k is trec_eval's ``recip_rank`` on the run cut at k.

Averaging: over the queries of the qrels. A qrels query with no relevant document scores 0 on
every metric (pytrec_eval reports it so); a qrels query missing from the run scores 0 (as
``trec_eval -c``). Run queries that are not in the qrels are ignored.
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping

import numpy as np

from rankwise.errors import ConfigError

DEFAULT_METRICS = ("ndcg@10", "mrr@10", "recall@100", "map")
_NAME = re.compile(r"^(ndcg|mrr|recall|p|map)(?:@(\d+))?$")


def parse_metric(name: str) -> tuple[str, int | None]:
    m = _NAME.match(name.strip().lower())
    if not m:
        raise ConfigError(f"unknown metric {name!r}: expected ndcg[@k], mrr[@k], recall@k, p@k or map[@k]")
    kind, k = m.group(1), (int(m.group(2)) if m.group(2) else None)
    if k is not None and k < 1:
        raise ConfigError(f"metric {name!r}: k must be >= 1")
    if kind in {"recall", "p"} and k is None:
        raise ConfigError(f"metric {name!r} needs a cut-off, e.g. {kind}@10")
    return kind, k


def rank(scores: Mapping[str, float]) -> list[str]:
    """Document ids in trec_eval's order: score descending, then docid descending."""
    return [d for d, _ in sorted(scores.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)]


def _query_metric(kind: str, k: int | None, gains: np.ndarray, judged: np.ndarray) -> float:
    """``gains``: grades of the ranked documents (0 if unjudged); ``judged``: all grades of the query."""
    n_rel = int((judged >= 1).sum())
    if n_rel == 0:
        return 0.0
    cut = gains if k is None else gains[:k]
    rel = cut >= 1
    if kind == "ndcg":
        ideal = np.sort(judged[judged > 0])[::-1]
        if k is not None:
            ideal = ideal[:k]
        disc = 1.0 / np.log2(np.arange(2, max(len(cut), len(ideal)) + 2))
        dcg = float((np.maximum(cut, 0) * disc[: len(cut)]).sum())
        idcg = float((ideal * disc[: len(ideal)]).sum())
        return dcg / idcg if idcg > 0 else 0.0
    if kind == "mrr":
        hits = np.flatnonzero(rel)
        return 1.0 / (hits[0] + 1) if len(hits) else 0.0
    if kind == "recall":
        return float(rel.sum()) / n_rel
    if kind == "p":
        return float(rel.sum()) / k  # type: ignore[operator]
    # map: precision at each relevant rank, over all relevant documents
    hits = np.flatnonzero(rel)
    return float((np.arange(1, len(hits) + 1) / (hits + 1)).sum()) / n_rel


def evaluate_per_query(
    qrels: Mapping[str, Mapping[str, int]],
    run: Mapping[str, Mapping[str, float]],
    metrics: Iterable[str] = DEFAULT_METRICS,
) -> dict[str, dict[str, float]]:
    """``{metric: {qid: value}}`` for every query of ``qrels``."""
    parsed = {m: parse_metric(m) for m in metrics}
    out: dict[str, dict[str, float]] = {m: {} for m in parsed}
    for qid, judgements in qrels.items():
        ranking = rank(run.get(qid, {}))
        gains = np.array([judgements.get(d, 0) for d in ranking], dtype=np.float64)
        judged = np.array(list(judgements.values()), dtype=np.float64)
        for name, (kind, k) in parsed.items():
            out[name][qid] = _query_metric(kind, k, gains, judged)
    return out


def evaluate(
    qrels: Mapping[str, Mapping[str, int]],
    run: Mapping[str, Mapping[str, float]],
    metrics: Iterable[str] = DEFAULT_METRICS,
) -> dict[str, float]:
    """Mean of each metric over the qrels queries (see the module docstring)."""
    per_query = evaluate_per_query(qrels, run, metrics)
    return {m: (float(np.mean(list(v.values()))) if v else 0.0) for m, v in per_query.items()}

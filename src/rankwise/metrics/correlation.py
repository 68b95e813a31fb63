"""Rank correlation between a model's scores and graded labels or a teacher's scores, per query.

Kendall's tau-b (ties in either ranking corrected, Kendall 1945) and Spearman's rho (Pearson
correlation of average ranks), both from scipy.stats, computed within each query and averaged
over the queries where both sides have at least two distinct values (elsewhere the correlation
is undefined and the query is left out, counted in ``n_queries``).

Against labels, the documents compared are the query's retrieved *judged* documents (an
unjudged document has no label to agree with). Against a teacher, the documents both runs
scored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass
class Correlation:
    kendall_tau: float
    spearman_rho: float
    n_queries: int


def _mean_corr(pairs: list[tuple[np.ndarray, np.ndarray]]) -> Correlation:
    taus, rhos = [], []
    for a, b in pairs:
        if len(a) < 2 or len(np.unique(a)) < 2 or len(np.unique(b)) < 2:
            continue
        taus.append(stats.kendalltau(a, b).statistic)
        rhos.append(stats.spearmanr(a, b).statistic)
    if not taus:
        return Correlation(float("nan"), float("nan"), 0)
    return Correlation(float(np.mean(taus)), float(np.mean(rhos)), len(taus))


def label_correlation(qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]]) -> Correlation:
    """Per-query correlation of scores with graded labels over retrieved judged documents."""
    pairs = []
    for qid, judged in qrels.items():
        ranking = run.get(qid, {})
        docs = [d for d in judged if d in ranking]
        pairs.append((np.array([ranking[d] for d in docs]), np.array([judged[d] for d in docs], dtype=np.float64)))
    return _mean_corr(pairs)


def teacher_correlation(
    run: Mapping[str, Mapping[str, float]], teacher: Mapping[str, Mapping[str, float]]
) -> Correlation:
    """Per-query correlation of two runs' scores over the documents both scored."""
    pairs = []
    for qid, ranking in run.items():
        other = teacher.get(qid, {})
        docs = [d for d in ranking if d in other]
        pairs.append((np.array([ranking[d] for d in docs]), np.array([other[d] for d in docs])))
    return _mean_corr(pairs)

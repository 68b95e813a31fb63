"""Threshold consistency across queries: OPIS (Operating-Point-Inconsistency Score).

Zhang et al., "Threshold-Consistent Margin Loss for Open-World Deep Metric Learning"
(arXiv 2307.04047). A retrieval system that serves one score threshold for every query wants
each query's trade-off at that threshold to look alike. For query i and threshold t, with the
query's retrieved positives P_i and negatives N_i (unjudged count as negatives)::

    TPR_i(t) = |{p in P_i : s_p >= t}| / |P_i|        TNR_i(t) = |{n in N_i : s_n < t}| / |N_i|
    U_i(t)   = 2 TPR_i(t) TNR_i(t) / (TPR_i(t) + TNR_i(t))     (0 when both are 0)
    OPIS     = (1/T) sum_i  1/(t_max - t_min) \\int_{t_min}^{t_max} (U_i(t) - mean_j U_j(t))^2 dt

The paper works with distances and class pairs; here the classes are queries and the
similarity is the model's score (higher = more relevant). The calibration range [t_min,
t_max] is where the *global* false-accept rate (the share of all negatives scoring >= t) lies
between ``far`` bounds, 1e-2 and 1e-1 by default as in the preregistration that methods.md
cites (the paper's exact bounds are unverified). The integral is a mean over ``n_thresholds``
evenly spaced thresholds. Queries lacking a retrieved positive or negative are left out.
Lower is more consistent; 0 means every query has the same utility curve.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rankwise.metrics.auc import _split


def utility_curves(
    pos_by_query: list[np.ndarray], neg_by_query: list[np.ndarray], thresholds: np.ndarray
) -> np.ndarray:
    """``U[i, t]``: harmonic mean of TPR and TNR of query i at each threshold."""
    out = np.zeros((len(pos_by_query), len(thresholds)))
    for i, (pos, neg) in enumerate(zip(pos_by_query, neg_by_query)):
        tpr = 1.0 - np.searchsorted(np.sort(pos), thresholds, side="left") / len(pos)  # share >= t
        tnr = np.searchsorted(np.sort(neg), thresholds, side="left") / len(neg)  # share < t
        denom = tpr + tnr
        out[i] = np.divide(2 * tpr * tnr, denom, out=np.zeros_like(denom), where=denom > 0)
    return out


def opis(
    qrels: Mapping[str, Mapping[str, int]],
    run: Mapping[str, Mapping[str, float]],
    *,
    far: tuple[float, float] = (1e-2, 1e-1),
    n_thresholds: int = 101,
) -> float:
    """OPIS over the qrels queries (see the module docstring); NaN when no query qualifies."""
    if not 0 < far[0] < far[1] < 1:
        raise ValueError(f"far bounds must satisfy 0 < low < high < 1, got {far}")
    pos_q, neg_q = [], []
    for qid in qrels:
        pos, neg = _split(qrels, run, qid)
        if len(pos) and len(neg):
            pos_q.append(pos)
            neg_q.append(neg)
    if not pos_q:
        return float("nan")
    all_neg = np.concatenate(neg_q)
    # global FAR(t) = share of negatives >= t; FAR = far[1] at the lower threshold, far[0] at the upper
    t_min, t_max = np.quantile(all_neg, [1 - far[1], 1 - far[0]])
    thresholds = np.linspace(t_min, t_max, n_thresholds)
    u = utility_curves(pos_q, neg_q, thresholds)
    return float(((u - u.mean(axis=0)) ** 2).mean())

"""Score-separation diagnostics: per-query and global ROC-AUC (Mann-Whitney U), ROC curves.

AUC is the probability that a random relevant document scores above a random non-relevant one
(ties count 1/2). Following the MW-loss paper's protocol (Sheikholeslami et al., 2025), each
query's negatives are its top retrieved non-relevant documents (unjudged count as
non-relevant); per-query AUC averages each query's own AUC, global AUC pools every query's
positives and negatives into one ROC, so it also asks whether one threshold works for all
queries.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Mann-Whitney AUC of two score samples via ranks (ties share their average rank)."""
    pos, neg = np.asarray(pos, dtype=np.float64), np.asarray(neg, dtype=np.float64)
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    # a tie group occupying sorted positions s+1..e shares the average rank (s + e + 1) / 2
    _, inverse, counts = np.unique(np.concatenate([pos, neg]), return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    average_rank = ends - (counts - 1) / 2
    u = average_rank[inverse[: len(pos)]].sum() - len(pos) * (len(pos) + 1) / 2
    return float(u / (len(pos) * len(neg)))


def _split(
    qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]], qid: str
) -> tuple[np.ndarray, np.ndarray]:
    judged = qrels.get(qid, {})
    ranking = run.get(qid, {})
    pos = np.array([s for d, s in ranking.items() if judged.get(d, 0) > 0])
    neg = np.array([s for d, s in ranking.items() if judged.get(d, 0) <= 0])
    return pos, neg


def per_query_auc(qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """AUC of each qrels query over the documents of its ranking; queries lacking a retrieved
    positive or negative are left out (their AUC is undefined)."""
    out = {}
    for qid in qrels:
        pos, neg = _split(qrels, run, qid)
        if len(pos) and len(neg):
            out[qid] = auc(pos, neg)
    return out


def global_auc(qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]]) -> float:
    return auc(*pooled_scores(qrels, run))


def roc_curve(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)``: one point per distinct score, thresholds descending, starting at
    (0, 0) with threshold +inf. A document is predicted relevant when its score >= threshold, so
    tied scores move together (a diagonal step) and the trapezoid area equals :func:`auc`."""
    pos, neg = np.asarray(pos, dtype=np.float64), np.asarray(neg, dtype=np.float64)
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError("roc_curve needs at least one positive and one negative score")
    scores = np.concatenate([pos, neg])
    is_pos = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], is_pos[order]
    last = np.r_[s[1:] != s[:-1], True]  # last index of each run of tied scores
    tp, fp = np.cumsum(y)[last], np.cumsum(1 - y)[last]
    fpr = np.r_[0.0, fp / len(neg)]
    tpr = np.r_[0.0, tp / len(pos)]
    return fpr, tpr, np.r_[np.inf, s[last]]


def pooled_scores(
    qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]]
) -> tuple[np.ndarray, np.ndarray]:
    """All retrieved positives' and negatives' scores over the qrels queries (global ROC, histograms)."""
    parts = [_split(qrels, run, qid) for qid in qrels]
    pos = np.concatenate([p for p, _ in parts]) if parts else np.array([])
    neg = np.concatenate([n for _, n in parts]) if parts else np.array([])
    return pos, neg

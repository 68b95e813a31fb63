"""Score calibration of positives vs negatives: histograms, reliability and expected
calibration error (ECE) of ``sigmoid(a * score + b)``.

ECE (Naeini et al., AAAI 2015; Guo et al., ICML 2017) with B equal-width probability bins::

    ECE = sum_b |B_b|/n * | mean_{i in B_b} y_i - mean_{i in B_b} p_i |

A bi-encoder's cosine scores are not probabilities, so two figures are reported: ECE of the
raw ``sigmoid(score)`` (a = 1, b = 0), which says how far the scores are from being usable as
probabilities as they are, and ECE after Platt scaling (a, b fitted by logistic regression on
the same scores), which says how well a single monotone map for all queries *could* calibrate
them — the global-threshold question the MW-loss paper raises. The Platt fit is in-sample, so
it is a diagnostic, not a held-out calibration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # stable for large |x|


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error of probabilities against 0/1 labels, equal-width bins on [0, 1]."""
    p, y = np.asarray(probs, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    if len(p) == 0:
        return float("nan")
    idx = np.minimum((p * bins).astype(np.int64), bins - 1)
    count = np.bincount(idx, minlength=bins)
    gap = np.abs(np.bincount(idx, y, minlength=bins) - np.bincount(idx, p, minlength=bins))
    return float(gap.sum() / len(p)) if count.sum() else float("nan")


def platt(scores: np.ndarray, labels: np.ndarray, iters: int = 50, l2: float = 1e-6) -> tuple[float, float]:
    """``(a, b)`` minimising the log loss of ``sigmoid(a s + b)`` (Newton's method on two parameters;
    a tiny L2 term keeps separable data finite)."""
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    x = np.stack([s, np.ones_like(s)], axis=1)
    w = np.zeros(2)
    for _ in range(iters):
        p = _sigmoid(x @ w)
        grad = x.T @ (p - y) + l2 * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return float(w[0]), float(w[1])


@dataclass
class Calibration:
    ece_raw: float
    ece_platt: float
    platt_a: float
    platt_b: float
    bins: list[dict[str, float]]  # reliability after Platt: count, mean predicted, observed rate


def calibration(pos: np.ndarray, neg: np.ndarray, bins: int = 15) -> Calibration:
    """Calibration of positive vs negative scores (see the module docstring)."""
    s = np.concatenate([np.asarray(pos, dtype=np.float64), np.asarray(neg, dtype=np.float64)])
    y = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
    a, b = platt(s, y)
    p = _sigmoid(a * s + b)
    idx = np.minimum((p * bins).astype(np.int64), bins - 1)
    rows = []
    for k in range(bins):
        m = idx == k
        if m.any():
            rows.append(
                {
                    "low": k / bins,
                    "high": (k + 1) / bins,
                    "count": int(m.sum()),
                    "predicted": float(p[m].mean()),
                    "observed": float(y[m].mean()),
                }
            )
    return Calibration(ece(_sigmoid(s), y, bins), ece(p, y, bins), a, b, rows)

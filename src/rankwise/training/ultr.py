"""Unbiased learning to rank from clicks: inverse propensity weighting (propensities given or
estimated by randomisation-free regression EM) and the Dual Learning Algorithm.

- :func:`ipw_examples`: a click log's sessions with each click weighted by the inverse of its
  rank's examination propensity relative to rank 1 (Joachims et al., "Unbiased Learning-to-Rank
  with Biased Feedback", WSDM 2017); any list loss then trains on them, e.g. ``softmax:normalize=false``.
- :func:`estimate_propensities_em`: the position-based model's propensities from the log alone
  (Wang et al., "Position Bias Estimation for Unbiased Learning to Rank in Personal Search",
  WSDM 2018): EM over ``P(click) = theta_k * gamma(x)``, relevance ``gamma`` a logistic
  regression on the features (the paper fits GBDT), no result randomisation needed.
- :class:`~rankwise.families.clicks.DLAModel` (Ai et al., "Unbiased Learning to Rank with Unbiased Propensity Estimation",
  SIGIR 2018; ``DLA_model.py``, ULTRA's ``dla.py``): a ranker and a propensity model (one logit
  per rank) trained together; each one's softmax gives the other's inverse weights,
  ``w_k = P_e(1) / P_e(k)`` for the ranker's click loss and ``v_i = P_r(1) / P_r(i)`` (the first
  displayed result's against result i's) for the propensity model's. Its family (:mod:`rankwise.families.clicks`) trains it through
  the one loop, with the configured loss as the ranker's click loss (the paper's:
  ``softmax:normalize=false``) and the same softmax loss for the propensity model.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from rankwise.data.clicks import ClickExample, ClickLog
from rankwise.data.letor import LetorData
from rankwise.families.clicks import ClickBatch, ClickFamily, DLAModel


def ipw_examples(
    log: ClickLog, data: LetorData, propensities: np.ndarray | None = None, *, clip: float | None = None
) -> list[ClickExample]:
    """Sessions with clicks divided by ``propensities[rank] / propensities[0]`` (None: raw clicks);
    ``clip`` caps the weights (a rarely examined rank otherwise dominates)."""
    out = log.examples(data)
    if propensities is None:
        return out
    p = np.asarray(propensities, dtype=np.float64)
    w = p[0] / np.maximum(p, 1e-12)
    if clip is not None:
        w = np.minimum(w, clip)
    for ex in out:
        ex.labels = (ex.labels * w[ex.ranks]).astype(np.float32)
    return out


def estimate_propensities_em(
    log: ClickLog, data: LetorData, *, iterations: int = 50, steps: int = 30, lr: float = 0.1, seed: int = 0
) -> np.ndarray:
    """Examination propensity by rank (rank 1 = 1.0) by regression EM over the click log."""
    shown = log.rows >= 0
    k = log.rows.shape[1]
    x = torch.as_tensor(data.features[np.maximum(log.rows, 0)], dtype=torch.float32)  # [S, K, F]
    c = torch.as_tensor(log.clicks, dtype=torch.float32)
    m = torch.as_tensor(shown, dtype=torch.float32)
    torch.manual_seed(seed)
    relevance = nn.Linear(x.shape[-1], 1)
    opt = torch.optim.Adam(relevance.parameters(), lr=lr)
    ctr = (c * m).sum(0) / m.sum(0).clamp_min(1)
    theta = (ctr / ctr[0].clamp_min(1e-6)).clamp(0.01, 1.0)
    for _ in range(iterations):
        with torch.no_grad():
            gamma = torch.sigmoid(relevance(x)[..., 0])
            no_click = (1 - theta * gamma).clamp_min(1e-6)
            exam_post = c + (1 - c) * theta * (1 - gamma) / no_click  # P(E=1 | c)
            rel_post = c + (1 - c) * (1 - theta) * gamma / no_click  # P(R=1 | c)
            theta = ((exam_post * m).sum(0) / m.sum(0).clamp_min(1)).clamp(1e-4, 1.0)
        for _ in range(steps):  # M-step for gamma: logistic regression on the soft relevance labels
            opt.zero_grad()
            logit = relevance(x)[..., 0]
            loss = (
                nn.functional.binary_cross_entropy_with_logits(logit, rel_post, reduction="none") * m
            ).sum() / m.sum()
            loss.backward()
            opt.step()
    theta = theta.numpy()
    return theta[:k] / theta[0]


__all__ = ["ipw_examples", "estimate_propensities_em", "DLAModel", "ClickBatch", "ClickFamily"]

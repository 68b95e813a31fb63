"""Unbiased learning to rank from clicks: inverse propensity weighting (propensities given or
estimated by randomisation-free regression EM) and the Dual Learning Algorithm.

- :func:`ipw_examples`: a click log's sessions with each click weighted by the inverse of its
  rank's examination propensity relative to rank 1 (Joachims et al., "Unbiased Learning-to-Rank
  with Biased Feedback", WSDM 2017); any list loss then trains on them, e.g. ``softmax:normalize=false``.
- :func:`estimate_propensities_em`: the position-based model's propensities from the log alone
  (Wang et al., "Position Bias Estimation for Unbiased Learning to Rank in Personal Search",
  WSDM 2018): EM over ``P(click) = theta_k * gamma(x)``, relevance ``gamma`` a logistic
  regression on the features (the paper fits GBDT), no result randomisation needed.
- :class:`DLAModel` (Ai et al., "Unbiased Learning to Rank with Unbiased Propensity Estimation",
  SIGIR 2018; ``DLA_model.py``, ULTRA's ``dla.py``): a ranker and a propensity model (one logit
  per rank) trained together; each one's softmax gives the other's inverse weights,
  ``w_k = P_e(1) / P_e(k)`` for the ranker's click loss and ``v_i = P_r(1) / P_r(i)`` (the first
  displayed result's against result i's) for the propensity model's. Its kind trains it through
  the one loop, with the configured loss as the ranker's click loss (the paper's:
  ``softmax:normalize=false``) and the same softmax loss for the propensity model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from rankwise.data.clicks import ClickExample, ClickLog
from rankwise.data.letor import LetorData
from rankwise.losses import softmax as softmax_loss
from rankwise.models.bi_encoder import TokenCount
from rankwise.models.feature_scorer import FeatureScorer, pad_features
from rankwise.train.kinds import OwnListKind, register_model_kind


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


class DLAModel(nn.Module):
    """A feature ranker and a propensity model (a logit per displayed rank) learned together."""

    def __init__(
        self, ranker: FeatureScorer, n_ranks: int = 10, max_weight: float | None = None, lr_scale: float = 50.0
    ) -> None:
        super().__init__()
        self.ranker = ranker
        self.raw_logits = nn.Parameter(torch.zeros(n_ranks))
        self.max_weight, self.lr_scale = max_weight, lr_scale

    @property
    def position_logits(self) -> torch.Tensor:
        """One logit per rank. Stored divided by ``lr_scale``, so that under Adam they move
        ``lr_scale`` times as fast as the ranker's weights (the authors train both at lr 0.05; a
        neural ranker wants about 1e-3, the propensities the larger steps)."""
        return self.raw_logits * self.lr_scale

    @property
    def device(self) -> torch.device:
        return self.raw_logits.device

    def propensities(self) -> np.ndarray:
        """Estimated examination propensity by rank, relative to rank 1."""
        p = torch.softmax(self.position_logits.detach().float(), 0).cpu().numpy()
        return p / p[0]

    def predict(self, features: np.ndarray, offsets: np.ndarray | None = None) -> np.ndarray:
        return self.ranker.predict(features, offsets)


@dataclass
class ClickBatch:
    x: torch.Tensor
    clicks: torch.Tensor
    ranks: torch.Tensor  # 0-based display rank of each item
    mask: torch.Tensor
    labels: torch.Tensor  # set by the kind each step: the propensity-weighted clicks
    hard: list[list[tuple[int, int]]]
    positive: list[int]
    positive_index: list[int]


@register_model_kind(DLAModel)
class DLAKind(OwnListKind):
    """Sessions as displayed: every row of a session in display order (no sampling: ranks matter)."""

    name = "dla"

    def batch(self, examples, rng, config, n_negatives, extra, choose):
        x, mask = pad_features([torch.as_tensor(ex.features, dtype=torch.float32) for ex in examples])
        clicks = torch.zeros(mask.shape)
        ranks = torch.zeros(mask.shape, dtype=torch.long)
        for i, ex in enumerate(examples):
            clicks[i, : len(ex.labels)] = torch.as_tensor(ex.labels, dtype=torch.float32)
            ranks[i, : len(ex.ranks)] = torch.as_tensor(ex.ranks, dtype=torch.long)
        n = len(examples)
        return ClickBatch(x, clicks, ranks, mask, clicks.clone(), [[] for _ in range(n)], [0] * n, [0] * n)

    def forward_backward(self, batch, loss_of_scores, config, token_cache, check):
        model, dev = self.model, self.model.device
        mask, clicks, ranks = batch.mask.to(dev), batch.clicks.to(dev), batch.ranks.to(dev)
        f = model.ranker(batch.x.to(dev), mask).float()
        g = model.position_logits.float()
        with torch.no_grad():
            pe = torch.softmax(g, 0)
            w = pe[0] / pe[ranks]  # inverse propensity weights for the ranker
            if model.max_weight is not None:
                w = w.clamp(max=model.max_weight)
            pr = torch.softmax(f.masked_fill(~mask, -1e30), 1)
            v = pr[:, :1] / pr.clamp_min(1e-30)  # inverse relevance weights for the propensity model
        batch.labels = (clicks * w).masked_fill(~mask, 0.0)
        rank_loss, info = loss_of_scores(f)
        exam_loss = softmax_loss(g[ranks], (clicks * v).masked_fill(~mask, 0.0), mask, normalize=False)
        loss = rank_loss + exam_loss
        check(loss)
        loss.backward()
        info = {**info, "exam_loss": float(exam_loss.detach())}
        return loss.detach(), info, TokenCount(int(mask.sum()), mask.numel())

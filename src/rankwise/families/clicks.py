"""Click models: the Dual Learning Algorithm's ranker and propensity model learned together from
click logs (:class:`DLAModel`; Ai et al., "Unbiased Learning to Rank with Unbiased Propensity
Estimation", SIGIR 2018; ``DLA_model.py``, ULTRA's ``dla.py``). Each one's softmax gives the
other's inverse weights, ``w_k = P_e(1) / P_e(k)`` for the ranker's click loss (the configured
loss; the paper's: ``softmax:normalize=false``) and ``v_i = P_r(1) / P_r(i)`` for the propensity
model's (the same softmax loss). Sessions train as displayed: no sampling, ranks matter."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from rankwise.batch import LabelledBatch
from rankwise.families._lists import OwnListFamily
from rankwise.families.base import register_family
from rankwise.losses import softmax as softmax_loss
from rankwise.models.bi_encoder import TokenCount
from rankwise.models.feature_scorer import FeatureScorer, pad_features


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

    def save(self, path):
        return self.ranker.save(path)


@dataclass
class ClickBatch(LabelledBatch):
    """``labels``: the propensity-weighted clicks, set by the family each step."""

    x: torch.Tensor
    clicks: torch.Tensor
    ranks: torch.Tensor  # 0-based display rank of each item


@register_family(DLAModel)
class ClickFamily(OwnListFamily):
    name = "dla"

    def batch(self, examples, rng, config, n_negatives, extra, choose):
        x, mask = pad_features([torch.as_tensor(ex.features, dtype=torch.float32) for ex in examples])
        clicks = torch.zeros(mask.shape)
        ranks = torch.zeros(mask.shape, dtype=torch.long)
        for i, ex in enumerate(examples):
            clicks[i, : len(ex.labels)] = torch.as_tensor(ex.labels, dtype=torch.float32)
            ranks[i, : len(ex.ranks)] = torch.as_tensor(ex.ranks, dtype=torch.long)
        return ClickBatch(clicks.clone(), mask, x, clicks, ranks)

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

    def evaluate(self, dataset, k: int = 100, *, metrics=None, **kw):
        from rankwise.metrics.model import evaluate_lists

        return evaluate_lists(self.model, dataset, metrics)

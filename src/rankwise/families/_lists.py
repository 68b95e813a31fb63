"""Shared by the families whose examples carry their own lists (features, responses, clicks)."""

from __future__ import annotations

import numpy as np
import torch

from rankwise.families.base import Family
from rankwise.models.bi_encoder import TokenCount


class OwnListFamily(Family):
    """No mined negatives; a list longer than ``list_size`` (when set) is sampled down each step."""

    def negatives_per_query(self, config, uses_hard: bool) -> int:
        return 0

    @staticmethod
    def rows(n: int, config, rng: np.random.Generator) -> np.ndarray:
        if config.list_size and n > config.list_size:
            return np.sort(rng.choice(n, size=config.list_size, replace=False))
        return np.arange(n)

    @staticmethod
    def backward(scores: torch.Tensor, mask: torch.Tensor, loss_of_scores, check):
        """The one-pass step: loss of the scores, checked, backward."""
        loss, info = loss_of_scores(scores.float())
        check(loss)
        loss.backward()
        return loss.detach(), info, TokenCount(int(mask.sum()), mask.numel())

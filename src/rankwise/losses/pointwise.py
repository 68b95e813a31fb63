"""Pointwise losses: each item scored against its own label."""

from __future__ import annotations

import torch

from rankwise.losses._common import check_inputs, positive, ranking_loss, reduce


@ranking_loss(shift_invariant=False)
def sigmoid(
    scores: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    weights: torch.Tensor | None = None,
    reduction: str = "mean",
    max_label: float = 1.0,
) -> torch.Tensor:
    r"""Sigmoid cross-entropy of each score against its label scaled to [0, 1].

    ``L_q = 1/n sum_i BCE(sigmoid(s_i), min(y_i / max_label, 1))`` over the real items (rax's
    ``sigmoid_cross_entropy_loss``; sentence-transformers' CrossEncoder
    ``BinaryCrossEntropyLoss``). With graded labels set ``max_label`` to the top grade so that
    grades map to targets 0, 1/max_label, ..., 1.

    Args:
        max_label: the grade that maps to target 1 (targets are ``label / max_label`` clipped to [0, 1]).

    Example:
        >>> import math
        >>> from torch import tensor
        >>> from rankwise.losses import sigmoid
        >>> loss = sigmoid(tensor([[0.0]]), tensor([[1.0]]))
        >>> round(loss.item(), 4), round(math.log(2), 4)
        (0.6931, 0.6931)
    """
    m = check_inputs(scores, labels, mask)
    top = positive("max_label", max_label)
    target = (labels.to(scores.dtype) / top).clamp(0, 1)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(scores, target, reduction="none")
    n = m.sum(dim=1)
    return reduce(torch.where(m, bce, torch.zeros_like(bce)).sum(dim=1) / n.clamp_min(1), n > 0, weights, reduction)


@ranking_loss(shift_invariant=False)
def mse(
    scores: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    weights: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Mean squared error between scores and labels: ``L_q = 1/n sum_i (s_i - y_i)^2``.

    The regression baseline of learning to rank (allRank's ``rmse`` without the root;
    sentence-transformers' CrossEncoder ``MSELoss``).

    Example:
        >>> from torch import tensor
        >>> from rankwise.losses import mse
        >>> loss = mse(tensor([[1.0, 0.0]]), tensor([[2.0, 0.0]]))
        >>> round(loss.item(), 4), round(float(((1 - 2) ** 2 + 0**2) / 2), 4)
        (0.5, 0.5)
    """
    m = check_inputs(scores, labels, mask)
    err = (scores - labels.to(scores.dtype)) ** 2
    n = m.sum(dim=1)
    return reduce(torch.where(m, err, torch.zeros_like(err)).sum(dim=1) / n.clamp_min(1), n > 0, weights, reduction)

"""Regularisers added to a ranking loss."""

from __future__ import annotations

import torch

from rankwise.errors import ConfigError
from rankwise.losses._common import check_inputs, ranking_loss


@ranking_loss(batch_level=True, shift_invariant=False)
def tcm(
    scores: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    weights: torch.Tensor | None = None,
    reduction: str = "mean",
    margin_plus: float = 0.9,
    margin_minus: float = 0.5,
    lambda_plus: float = 1.0,
    lambda_minus: float = 1.0,
) -> torch.Tensor:
    r"""Threshold-Consistent Margin (TCM): penalise positives below m+ and negatives above m-.

    Over all real (query, document) cosine similarities of the batch, with
    ``S+ = {positives with s <= m+}`` and ``S- = {negatives with s >= m-}``::

        L = lambda+ * mean_{S+} (m+ - s) + lambda- * mean_{S-} (s - m-)   (an empty set adds 0)

    Zhang et al., "Threshold-Consistent Margin Loss for Open-World Deep Metric Learning" (arXiv
    2307.04047); defaults m+ = 0.9, m- = 0.5, lambda = 1 as pytorch-metric-learning's
    ``ThresholdConsistentMarginLoss``. A regulariser: add it to a ranking loss, e.g.
    ``infonce + tcm``. Scores must be cosine similarities. One value for the batch.

    Args:
        margin_plus: m+: positives below it are penalised.
        margin_minus: m-: negatives above it are penalised.
        lambda_plus: weight of the positive term.
        lambda_minus: weight of the negative term.

    Example:
        >>> from torch import tensor
        >>> from rankwise.losses import tcm
        >>> loss = tcm(tensor([[0.8, 0.6]]), tensor([[1.0, 0.0]]))
        >>> round(loss.item(), 4), round((0.9 - 0.8) + (0.6 - 0.5), 4)
        (0.2, 0.2)
    """
    m = check_inputs(scores, labels, mask)
    if not -1 <= margin_minus <= margin_plus <= 1:
        raise ConfigError(
            f"need -1 <= margin_minus <= margin_plus <= 1, got margin_minus={margin_minus}, margin_plus={margin_plus}"
        )
    if weights is not None or reduction != "mean":
        raise ConfigError("tcm is one value for the batch: use reduction='mean' and no weights")
    pos = (labels > 0) & m & (scores <= margin_plus)
    neg = (labels <= 0) & m & (scores >= margin_minus)
    zero = torch.zeros_like(scores)
    pos_term = torch.where(pos, margin_plus - scores, zero).sum() / pos.sum().clamp_min(1)
    neg_term = torch.where(neg, scores - margin_minus, zero).sum() / neg.sum().clamp_min(1)
    return lambda_plus * pos_term + lambda_minus * neg_term

"""Listwise softmax losses."""

from __future__ import annotations

import torch

from rankwise.losses._common import check_inputs, positive, reduce


def infonce(
    scores: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    weights: torch.Tensor | None = None,
    reduction: str = "mean",
    temperature: float = 0.05,
) -> torch.Tensor:
    r"""Softmax cross-entropy / InfoNCE with temperature.

    For list ``q`` with positives ``P_q = {i : labels[q,i] > 0}`` and negatives ``N_q`` (the other
    real items), each positive competes against the negatives only::

        L_q = 1/|P_q| * sum_{p in P_q} [ -s_p/tau + log( exp(s_p/tau) + sum_{n in N_q} exp(s_n/tau) ) ]

    With one positive per list this is the usual in-batch softmax of CPC/InfoNCE (van den Oord et
    al., "Representation Learning with Contrastive Predictive Coding", 2018) and of DPR (Karpukhin
    et al., 2020); sentence-transformers' MultipleNegativesRankingLoss is the case tau = 1/scale.
    Other positives of the same list are left out of each positive's denominator, so a document
    that is relevant to two queries is never pushed down as a negative. Lists with no positive
    or no real item are skipped by the mean.

    Example: scores ``[[2., 1., 0.]]``, labels ``[[1, 0, 0]]``, tau = 1 gives
    ``-2 + log(e^2 + e^1 + e^0) = 0.4076``.
    """
    m = check_inputs(scores, labels, mask)
    tau = positive("temperature", temperature)
    logits = scores / tau
    pos = (labels > 0) & m
    neg = (labels <= 0) & m
    neg_inf = torch.finfo(logits.dtype).min
    # log-sum-exp over the negatives of each list, then combined with each positive on its own
    neg_lse = torch.logsumexp(torch.where(neg, logits, torch.full_like(logits, neg_inf)), dim=1, keepdim=True)
    has_neg = neg.any(dim=1, keepdim=True)
    denom = torch.where(has_neg, torch.logaddexp(logits, neg_lse), logits)
    per_item = torch.where(pos, denom - logits, torch.zeros_like(logits))
    n_pos = pos.sum(dim=1)
    per_list = per_item.sum(dim=1) / n_pos.clamp_min(1)
    return reduce(per_list, n_pos > 0, weights, reduction)

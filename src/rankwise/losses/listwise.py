"""Listwise losses of the softmax / Plackett-Luce family."""

from __future__ import annotations

import torch

from rankwise.errors import ConfigError
from rankwise.losses._common import NEG, check_inputs, cutoff, masked_log_softmax, positive, ranking_loss, reduce


@ranking_loss()
def infonce(
    scores: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    weights: torch.Tensor | None = None,
    reduction: str = "mean",
    temperature: float = 0.05,
    symmetric: bool = False,
) -> torch.Tensor:
    r"""Softmax cross-entropy / InfoNCE with temperature.

    For list ``q`` with relevant items ``P_q`` (label > 0)::

        L_q = -1/|P_q| * sum_{p in P_q} log( exp(s_p/tau) / sum_{j real} exp(s_j/tau) )

    CPC/InfoNCE (van den Oord et al., 2018), DPR's in-batch softmax (Karpukhin et al., 2020);
    sentence-transformers' MultipleNegativesRankingLoss is the one-positive case with
    tau = 1/scale. With several positives each one's denominator holds the others too (DEXML's
    "softmax" baseline); :func:`decoupled_softmax` removes them.

    ``symmetric=True`` adds the column-wise direction and averages the two, as Sample4Geo's
    symmetric InfoNCE (Deuser et al., ICCV 2023) and CLIP do: each column (document) must pick
    out its query among all rows. It needs the in-batch matrix (columns are shared by all rows).

    Args:
        temperature: tau, dividing every score (sentence-transformers' ``scale`` is 1/tau).
        symmetric: also the column-wise direction (each document picks its query), averaged with the rows.

    Example:
        >>> import math
        >>> from torch import tensor
        >>> from rankwise.losses import infonce
        >>> loss = infonce(tensor([[2.0, 1.0, 0.0]]), tensor([[1.0, 0.0, 0.0]]), temperature=1.0)
        >>> round(loss.item(), 4), round(-2 + math.log(math.exp(2) + math.exp(1) + 1), 4)
        (0.4076, 0.4076)
    """
    check_inputs(scores, labels, mask)
    tau = positive("temperature", temperature)
    m = None if mask is None else mask.bool()
    rows = _softmax_ce(scores / tau, labels, m, weights, reduction)
    if not symmetric:
        return rows
    if reduction == "none":
        raise ConfigError("infonce with symmetric=True has no per-list value: use reduction='mean' or 'sum'")
    cols = _softmax_ce(scores.T / tau, labels.T, None if m is None else m.T, None, reduction)
    return (rows + cols) / 2


def _softmax_ce(logits, labels, m, weights, reduction):
    # -log softmax_p = lse - s_p: one log-sum-exp per list instead of a full log-softmax matrix
    # (this loss runs on every in-batch training step)
    pos = labels > 0 if m is None else (labels > 0) & m
    lse = torch.logsumexp(logits if m is None else logits.masked_fill(~m, NEG), dim=1)
    pos_f = pos.to(logits.dtype)
    n_pos = pos_f.sum(dim=1)
    per_list = lse - (logits * pos_f).sum(dim=1) / n_pos.clamp_min(1)
    return reduce(per_list, n_pos > 0, weights, reduction)


@ranking_loss()
def decoupled_softmax(
    scores: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    weights: torch.Tensor | None = None,
    reduction: str = "mean",
    temperature: float = 0.05,
    graded: bool = False,
) -> torch.Tensor:
    r"""Decoupled softmax: each positive competes with the negatives only.

    ``L_q = -1/|P_q| * sum_{p in P_q} log( e^{s_p/tau} / (e^{s_p/tau} + sum_{n: y_n = 0} e^{s_n/tau}) )``

    Gupta et al., "Dual-Encoders for Extreme Multi-Label Classification" (DEXML, ICLR 2024),
    ``losses.py::SimLoss``: the other positives are masked out of each positive's denominator,
    so a list with many positives is not penalised for scoring them all high. ``graded=True``
    weights each positive by its label (DEXML's ``loss_weighted``) instead of 1/|P_q|.
    tau = 0.05 is DEXML's default.

    Args:
        temperature: tau, dividing every score.
        graded: weight each positive by its label instead of 1/|P_q|.

    Example:
        >>> import math
        >>> from torch import tensor
        >>> from rankwise.losses import decoupled_softmax
        >>> loss = decoupled_softmax(tensor([[3.0, 2.0, 0.0]]), tensor([[1.0, 1.0, 0.0]]), temperature=1.0)
        >>> round(loss.item(), 4), round((math.log1p(math.exp(-3)) + math.log1p(math.exp(-2))) / 2, 4)
        (0.0878, 0.0878)
    """
    m = check_inputs(scores, labels, mask)
    tau = positive("temperature", temperature)
    logits = scores / tau
    pos = (labels > 0) & m
    neg = (labels <= 0) & m
    neg_lse = torch.logsumexp(logits.masked_fill(~neg, NEG), dim=1, keepdim=True)
    has_neg = neg.any(dim=1, keepdim=True)
    denom = torch.where(has_neg, torch.logaddexp(logits, neg_lse), logits)
    per_item = torch.where(pos, denom - logits, torch.zeros_like(logits))
    w = torch.where(pos, labels.to(logits.dtype), torch.zeros_like(logits)) if graded else pos.to(logits.dtype)
    per_list = (per_item * w).sum(dim=1) / w.sum(dim=1).clamp_min(1e-12)
    return reduce(per_list, pos.any(dim=1), weights, reduction)


@ranking_loss()
def listnet(
    scores: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    weights: torch.Tensor | None = None,
    reduction: str = "mean",
    temperature: float = 1.0,
    label_temperature: float = 1.0,
) -> torch.Tensor:
    r"""ListNet: cross-entropy between the top-one probabilities of labels and scores.

    ``L_q = -sum_i softmax(y)_i * log softmax(s / tau)_i`` over the real items (Cao et al.,
    "Learning to Rank: From Pairwise Approach to Listwise Approach", ICML 2007; allRank's
    ``listNet`` and sentence-transformers' CrossEncoder ``ListNetLoss`` use the same target
    ``softmax(y)``). Lists without a relevant item are skipped. With binary labels and long
    lists ``softmax(y)`` is nearly uniform (one positive among 31 negatives gets 8 % of the
    mass), which trains scores towards equality; ``label_temperature`` < 1 sharpens the target
    to ``softmax(y / label_temperature)``.

    Args:
        temperature: tau on the scores, ``softmax(s / tau)``.
        label_temperature: sharpens the target to ``softmax(y / label_temperature)``.

    Example:
        >>> import math
        >>> from torch import tensor
        >>> from rankwise.losses import listnet
        >>> e = math.e
        >>> loss = listnet(tensor([[1.0, 0.0]]), tensor([[1.0, 0.0]]))
        >>> round(loss.item(), 4), round(-(e / (e + 1)) * math.log(e / (e + 1)) - (1 / (e + 1)) * math.log(1 / (e + 1)), 4)
        (0.5822, 0.5822)
    """
    m = check_inputs(scores, labels, mask)
    tau = positive("temperature", temperature)
    target = torch.softmax(
        (labels.to(scores.dtype) / positive("label_temperature", label_temperature)).masked_fill(~m, NEG), dim=1
    )
    logp = masked_log_softmax(scores / tau, m)
    per_list = -torch.where(m, target * logp, torch.zeros_like(logp)).sum(dim=1)
    return reduce(per_list, ((labels > 0) & m).any(dim=1), weights, reduction)


def _pl_order(scores: torch.Tensor, labels: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Order by label (descending); equal labels in the model's current order; padding last.

    Equal labels impose no order, and among the orders they allow the Plackett-Luce likelihood is
    highest for the one that follows the scores, so ties cost nothing and push nothing."""
    with torch.no_grad():
        key_s = torch.argsort(scores.masked_fill(~m, float("-inf")), dim=1, descending=True, stable=True)
        lab = labels.to(torch.float64).masked_fill(~m, float("-inf"))
        key_l = torch.argsort(torch.gather(lab, 1, key_s), dim=1, descending=True, stable=True)
        return torch.gather(key_s, 1, key_l)


def _pl_log_probs(scores: torch.Tensor, order: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """log P(item at position k | items not yet placed) for the given order (0 at padding)."""
    s = torch.gather(scores, 1, order)
    valid = torch.gather(m, 1, order)
    suffix_lse = torch.flip(torch.logcumsumexp(torch.flip(s.masked_fill(~valid, NEG), [1]), dim=1), [1])
    return torch.where(valid, s - suffix_lse, torch.zeros_like(s)), valid


@ranking_loss()
def listmle(
    scores: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    weights: torch.Tensor | None = None,
    reduction: str = "mean",
    temperature: float = 1.0,
    top_k: str | int | None = "relevant",
) -> torch.Tensor:
    r"""ListMLE: negative Plackett-Luce log-likelihood of the ideal ranking.

    ``L_q = -sum_{k=1}^{K} [ s_{pi_k}/tau - log sum_{j >= k} exp(s_{pi_j}/tau) ]`` with ``pi``
    the items sorted by label (Xia et al., "Listwise Approach to Learning to Rank", ICML 2008).
    ``top_k="relevant"`` (default) sums the first K = |relevant| positions only — the top-k
    ListMLE of Xia et al. (NeurIPS 2009) — so no arbitrary order is imposed among the
    non-relevant items; an integer K or ``None`` (all positions, the original) also work.
    Equal labels are taken in the model's current order (see ``_pl_order``), which keeps the
    loss invariant to how the list is permuted, instead of allRank's random shuffle.

    Args:
        temperature: tau on the scores.
        top_k: how many places of the label order the likelihood covers: ``relevant`` (the relevant items), an int, or None (the whole list).

    Example:
        >>> import math
        >>> from torch import tensor
        >>> from rankwise.losses import listmle
        >>> e = math.e
        >>> loss = listmle(tensor([[0.0, 1.0, 2.0]]), tensor([[2.0, 1.0, 0.0]]), top_k=None)
        >>> round(loss.item(), 4), round(-(0 - math.log(1 + e + e**2)) - (1 - math.log(e + e**2)), 4)
        (3.7209, 3.7209)
    """
    m = check_inputs(scores, labels, mask)
    tau = positive("temperature", temperature)
    order = _pl_order(scores, labels, m)
    logp, valid = _pl_log_probs(scores / tau, order, m)
    pos = torch.arange(scores.shape[1], device=scores.device)[None, :]
    n_rel = ((labels > 0) & m).sum(dim=1, keepdim=True)
    if top_k == "relevant":
        count = pos < n_rel
    elif top_k is None:
        count = torch.ones_like(valid)
    else:
        count = pos < cutoff("top_k", top_k, scores.shape[1])
    per_list = -torch.where(count & valid, logp, torch.zeros_like(logp)).sum(dim=1)
    return reduce(per_list, n_rel[:, 0] > 0, weights, reduction)


@ranking_loss()
def plistmle(
    scores: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    weights: torch.Tensor | None = None,
    reduction: str = "mean",
    temperature: float = 1.0,
) -> torch.Tensor:
    r"""Position-aware ListMLE: each position's term weighted by its importance.

    ``L_q = -sum_k alpha_k * log P(pi_k | pi_k, ..., pi_n)`` with ``alpha_k = (2^{n-k} - 1) / Z``
    normalised to sum to 1 over the list's n real items (Lan et al., "Position-Aware ListMLE: A
    Sequential Learning Process for Ranking", UAI 2014; the default weights of
    sentence-transformers' ``PListMLELoss``). Ties as in :func:`listmle`. Long lists are
    rescaled in log space so the weights stay finite.

    Args:
        temperature: tau on the scores.

    Example:
        >>> import math
        >>> from torch import tensor
        >>> from rankwise.losses import plistmle
        >>> e = math.e
        >>> loss = plistmle(tensor([[0.0, 1.0]]), tensor([[1.0, 0.0]]))
        >>> round(loss.item(), 4), round(math.log(1 + e), 4)
        (1.3133, 1.3133)
    """
    m = check_inputs(scores, labels, mask)
    tau = positive("temperature", temperature)
    order = _pl_order(scores, labels, m)
    logp, valid = _pl_log_probs(scores / tau, order, m)
    n = valid.sum(dim=1, keepdim=True)
    k = torch.arange(1, scores.shape[1] + 1, device=scores.device)[None, :]
    # alpha_k ∝ 2^(n-k) - 1, computed as 2^(n-k-c)(1 - 2^-(n-k)) with c = n-1 to avoid overflow
    expo = (n - k).to(scores.dtype)
    alpha = torch.where(
        valid & (expo > 0),
        torch.pow(2.0, expo - (n - 1).to(scores.dtype)) * (1 - torch.pow(2.0, -expo)),
        torch.zeros_like(logp),
    )
    alpha = alpha / alpha.sum(dim=1, keepdim=True).clamp_min(1e-300)
    per_list = -(alpha * logp).sum(dim=1)
    return reduce(per_list, ((labels > 0) & m).any(dim=1) & (n[:, 0] > 1), weights, reduction)


@ranking_loss()
def soft_topk(
    scores: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    weights: torch.Tensor | None = None,
    reduction: str = "mean",
    k: int = 5,
    alpha: float = 2.0,
    temperature: float = 0.05,
    iterations: int = 100,
) -> torch.Tensor:
    r"""Soft top-k loss: raise the probability that each positive is in the soft top k.

    With ``x = s / tau``, find per list the threshold ``t`` with ``sum_j sigmoid(alpha (x_j + t)) = k``
    (bisection), then ``p_j = sigmoid(alpha (x_j + t))`` and
    ``L_q = -1/|P_q| * sum_{p in P_q} log p_p``. Gupta et al., DEXML (ICLR 2024),
    ``utils/topk_utils.py``; defaults k = 5, alpha = 2, tau = 0.05 as there. The gradient goes
    through ``t`` by the implicit function theorem (``dt/dx_j = -v_j / sum v``, ``v = sigmoid'``),
    as DEXML's custom backward does; ``k`` must not exceed the list size.

    Args:
        k: the top-k the relevant items should enter.
        alpha: weight of the positives' term.
        temperature: tau of the soft top-k operator.
        iterations: bisection steps that find the soft top-k threshold.

    Example:
        >>> import math
        >>> from torch import tensor
        >>> from rankwise.losses import soft_topk
        >>> loss = soft_topk(tensor([[0.0, 0.0]]), tensor([[1.0, 0.0]]), k=1, temperature=1.0)
        >>> round(loss.item(), 4), round(math.log(2), 4)
        (0.6931, 0.6931)
    """
    m = check_inputs(scores, labels, mask)
    tau = positive("temperature", temperature)
    a = positive("alpha", alpha)
    kk = cutoff("k", k, scores.shape[1])
    x = scores / tau
    mf = m.to(x.dtype)
    with torch.no_grad():
        big = 40.0 / a
        xm = x.masked_fill(~m, 0.0)
        lo = -(x.masked_fill(~m, NEG).max(dim=1, keepdim=True).values) - big
        hi = -(x.masked_fill(~m, -NEG).min(dim=1, keepdim=True).values) + big
        target = torch.minimum(torch.full_like(lo, float(kk)), mf.sum(dim=1, keepdim=True) - 1e-6)
        for _ in range(iterations):
            mid = (lo + hi) / 2
            over = (torch.sigmoid(a * (xm + mid)) * mf).sum(dim=1, keepdim=True) > target
            hi = torch.where(over, mid, hi)
            lo = torch.where(over, lo, mid)
        t0 = (lo + hi) / 2
        sig = torch.sigmoid(a * (xm + t0))
        v = a * sig * (1 - sig) * mf
        vsum = v.sum(dim=1, keepdim=True).clamp_min(1e-300)
    # value t0, gradient -v/sum(v) with respect to x (implicit differentiation)
    t = t0 - ((v / vsum) * (x - x.detach())).masked_fill(~m, 0.0).sum(dim=1, keepdim=True)
    logp = torch.nn.functional.logsigmoid(a * (x + t))
    pos = (labels > 0) & m
    n_pos = pos.sum(dim=1)
    per_list = -torch.where(pos, logp, torch.zeros_like(logp)).sum(dim=1) / n_pos.clamp_min(1)
    return reduce(per_list, n_pos > 0, weights, reduction)


@ranking_loss()
def softmax(
    scores: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    weights: torch.Tensor | None = None,
    reduction: str = "mean",
    normalize: bool = True,
) -> torch.Tensor:
    r"""Softmax cross-entropy with the labels as (unnormalised) target weights.

    ``L_q = -sum_i y_i log softmax(s)_i``, divided by ``sum_i y_i`` when ``normalize`` (the labels as
    a distribution: rax's ``softmax_loss``; Bruch et al., "An Analysis of the Softmax Cross Entropy
    Loss for Learning-to-Rank with Binary Relevance", ICTIR 2019). With click counts, or clicks times
    inverse propensities, as labels and ``normalize=false`` it is the click-weighted softmax loss of
    unbiased learning to rank (Ai et al., "Unbiased Learning to Rank with Unbiased Propensity
    Estimation", SIGIR 2018), where a list counts by its weighted clicks.

    Args:
        normalize: divide each list's loss by the sum of its labels.

    Example:
        >>> import math
        >>> from torch import tensor
        >>> from rankwise.losses import softmax
        >>> s, y = [2.0, 1.0, 0.0], [2.0, 1.0, 0.0]
        >>> logp = [si - math.log(sum(math.exp(x) for x in s)) for si in s]
        >>> loss = softmax(tensor([s]), tensor([y]))
        >>> round(loss.item(), 4), round(-(2 * logp[0] + 1 * logp[1]) / 3, 4)
        (0.7409, 0.7409)
        >>> round(softmax(tensor([s]), tensor([y]), normalize=False).item(), 4), round(-(2 * logp[0] + logp[1]), 4)
        (2.2228, 2.2228)
    """
    m = check_inputs(scores, labels, mask)
    y = torch.where(m, labels.to(scores.dtype), torch.zeros_like(scores))
    logp = masked_log_softmax(scores, m)
    per_list = -torch.where(m, y * logp, torch.zeros_like(logp)).sum(dim=1)
    total = y.sum(dim=1)
    if normalize:
        per_list = per_list / total.clamp_min(1e-12)
    return reduce(per_list, (total > 0) & (m.sum(dim=1) > 1), weights, reduction)

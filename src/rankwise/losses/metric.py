"""Losses that optimise nDCG through bounds or smooth surrogates: LambdaLoss, ApproxNDCG, NeuralNDCG."""

from __future__ import annotations

import torch

from rankwise.errors import ConfigError
from rankwise.losses._common import LN2, NEG, check_inputs, cutoff, gains, ideal_dcg, positive, ranking_loss, reduce


@ranking_loss(variant="scheme")
def lambdaloss(
    scores: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    weights: torch.Tensor | None = None,
    reduction: str = "mean",
    scheme: str = "ndcg2pp",
    sigma: float = 1.0,
    mu: float = 10.0,
    k: int | None = None,
) -> torch.Tensor:
    r"""LambdaLoss: metric-driven pairwise bounds on nDCG.

    Items are ranked by the current scores (positions ``i, j``; no gradient through the sort).
    With ``G_i = (2^{y_i} - 1) / IDCG@k`` and ``D(i) = log2(1 + i)``::

        L_q = - sum_{y_i > y_j} w_ij * log2 sigmoid(sigma (s_i - s_j))
        ndcg2   : w_ij = |G_i - G_j| * |1/D(|i-j|) - 1/D(|i-j| + 1)|          (NDCG-Loss2)
        ndcg2pp : w_ij = mu * ndcg2_ij + |G_i - G_j| * |1/D(i) - 1/D(j)|        (NDCG-Loss2++)

    Wang et al., "The LambdaLoss Framework for Ranking Metric Optimization" (CIKM 2018), Eqs.
    13-14; weights as in allRank's ``lambdaLoss`` and sentence-transformers' ``LambdaLoss``
    (mu = 10). With ``k``, only pairs with an item in the top k count (Eq. 18). The paper's
    per-list sum is kept; lists are then averaged.

    Args:
        scheme: the weight scheme: ``ndcg2`` or ``ndcg2pp`` (NDCG-Loss2++, the paper's best).
        sigma: slope of the pairwise logistic.
        mu: weight of the NDCG-Loss2 term in ``ndcg2pp``.
        k: rank cut-off of the metric (None: the whole list).

    Example:
        >>> import math
        >>> from torch import tensor
        >>> from rankwise.losses import lambdaloss
        >>> e = math.e
        >>> loss = lambdaloss(tensor([[0.0, 1.0]]), tensor([[1.0, 0.0]]), scheme="ndcg2")
        >>> round(loss.item(), 4), round((1 - 1 / math.log2(3)) * math.log2(1 + e), 4)
        (0.6993, 0.6993)
    """
    m = check_inputs(scores, labels, mask)
    if scheme not in {"ndcg2", "ndcg2pp"}:
        raise ConfigError(f"scheme must be 'ndcg2' or 'ndcg2pp', got {scheme!r}")
    s = positive("sigma", sigma)
    if mu < 0:
        raise ConfigError(f"mu must be >= 0, got {mu}")
    size = scores.shape[1]
    kk = cutoff("k", k, size)
    order = torch.argsort(scores.detach().masked_fill(~m, float("-inf")), dim=1, descending=True, stable=True)
    s_sorted = torch.gather(scores, 1, order)
    y_sorted = torch.gather(labels.to(scores.dtype), 1, order)
    m_sorted = torch.gather(m, 1, order)
    idcg = ideal_dcg(labels.to(scores.dtype), m, kk)
    g = gains(y_sorted, m_sorted) / idcg.clamp_min(1e-12)[:, None]
    pos = torch.arange(1, size + 1, device=scores.device, dtype=scores.dtype).expand(scores.shape[0], -1)
    # Only items above their list's lowest label can be the better item of a pair, so the pair
    # tensors are [lists, R, size] with R the most such items in a list (5 of 1,000, say),
    # not [lists, size, size].
    y_low = y_sorted.masked_fill(~m_sorted, float("inf")).min(dim=1, keepdim=True).values
    above = m_sorted & (y_sorted > y_low)
    r = max(int(above.sum(dim=1).max()), 1)
    rows = torch.argsort(above.to(torch.int8), dim=1, descending=True, stable=True)[:, :r]
    take = lambda t: torch.gather(t, 1, rows)  # noqa: E731
    s_i, y_i, g_i, p_i, ok_i = take(s_sorted), take(y_sorted), take(g), take(pos), take(above)
    gap = (p_i[:, :, None] - pos[:, None, :]).abs()
    delta = (1.0 / torch.log2(1.0 + gap).clamp_min(1e-12) - 1.0 / torch.log2(2.0 + gap)).abs()
    dg = (g_i[:, :, None] - g[:, None, :]).abs()
    w = dg * delta
    if scheme == "ndcg2pp":
        w = mu * w + dg * (1.0 / torch.log2(1.0 + p_i)[:, :, None] - 1.0 / torch.log2(1.0 + pos)[:, None, :]).abs()
    pairs = ok_i[:, :, None] & m_sorted[:, None, :] & (y_i[:, :, None] > y_sorted[:, None, :])
    top = pos <= kk
    pairs = pairs & (take(top)[:, :, None] | top[:, None, :])
    diff = s * (s_i[:, :, None] - s_sorted[:, None, :])
    term = torch.where(pairs, torch.nn.functional.softplus(-diff) * w.detach(), torch.zeros_like(diff))
    per_list = term.sum(dim=(1, 2)) / LN2
    return reduce(per_list, pairs.any(dim=2).any(dim=1) & (idcg > 0), weights, reduction)


@ranking_loss()
def approxndcg(
    scores: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    weights: torch.Tensor | None = None,
    reduction: str = "mean",
    alpha: float = 1.0,
) -> torch.Tensor:
    r"""ApproxNDCG: nDCG with each rank replaced by a sigmoid-smoothed rank.

    ``rank_i ≈ 1 + sum_{j != i} sigmoid(alpha (s_j - s_i))`` and
    ``L_q = -(1/IDCG) sum_i (2^{y_i} - 1) / log2(1 + rank_i)``
    (Qin, Liu, Li, "A General Approximation Framework for Direct Optimization of Information
    Retrieval Measures", Information Retrieval 2010; allRank's ``approxNDCGLoss``, alpha = 1).
    Larger alpha approaches the true nDCG with a harder surface.

    Args:
        alpha: sharpness of the sigmoid that approximates each rank.

    Example:
        >>> import math
        >>> from torch import tensor
        >>> from rankwise.losses import approxndcg
        >>> e = math.e
        >>> loss = approxndcg(tensor([[1.0, 0.0]]), tensor([[1.0, 0.0]]))
        >>> round(loss.item(), 4), round(-1 / math.log2(2 + 1 / (1 + e)), 4)
        (-0.846, -0.846)
    """
    m = check_inputs(scores, labels, mask)
    a = positive("alpha", alpha)
    both = m[:, :, None] & m[:, None, :]
    eye = torch.eye(scores.shape[1], dtype=torch.bool, device=scores.device)[None]
    sig = torch.sigmoid(a * (scores[:, None, :] - scores[:, :, None]))  # [q, i, j] = sigmoid(alpha (s_j - s_i))
    approx_rank = 1.0 + torch.where(both & ~eye, sig, torch.zeros_like(sig)).sum(dim=2)
    y = labels.to(scores.dtype)
    idcg = ideal_dcg(y, m)
    dcg = (gains(y, m) / torch.log2(1.0 + approx_rank)).sum(dim=1)
    return reduce(-dcg / idcg.clamp_min(1e-12), idcg > 0, weights, reduction)


def _neural_sort(scores: torch.Tensor, m: torch.Tensor, tau: float) -> torch.Tensor:
    """NeuralSort relaxation ``P[q, i, j]`` ≈ item j at position i (Grover et al., ICLR 2019),
    restricted to each list's real items: ``P[i, :] = softmax(((n + 1 - 2i) s - A 1) / tau)``."""
    n = m.sum(dim=1, keepdim=True).to(scores.dtype)  # [q, 1]
    s = scores.masked_fill(~m, 0.0)
    both = m[:, :, None] & m[:, None, :]
    a1 = torch.where(
        both, (s[:, :, None] - s[:, None, :]).abs(), torch.zeros_like(s[:, :, None].expand(-1, -1, s.shape[1]))
    ).sum(dim=2)
    i = torch.arange(1, scores.shape[1] + 1, device=scores.device, dtype=scores.dtype)[None, :, None]
    logits = ((n[:, :, None] + 1 - 2 * i) * s[:, None, :] - a1[:, None, :]) / tau
    logits = logits.masked_fill(~m[:, None, :], NEG)
    p = torch.softmax(logits, dim=2)
    rows = torch.arange(scores.shape[1], device=scores.device)[None, :] < n
    return p * rows[:, :, None].to(p.dtype)


def _sinkhorn_scalings(k: torch.Tensor, iterations: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sinkhorn scaling vectors ``u, v`` with ``diag(u) K diag(v)`` doubly stochastic on the real
    block: rows normalised, then columns, ``iterations`` times. allRank's ``sinkhorn_scaling``
    normalises columns first and stops early once within 1e-6, so after 50 rounds the two soft
    permutations differ by up to about 2e-6 (5 items), 6e-4 (20) and 2e-3 (100 items).

    Working on the vectors keeps one copy of ``K`` for the backward pass instead of one per
    iteration, so 1,000-item lists fit in memory. A fixed number of rounds keeps the value a
    smooth function of the scores."""
    kt = k.transpose(1, 2).contiguous()  # one transposed copy, not one per iteration
    v = torch.ones(k.shape[0], k.shape[2], 1, dtype=k.dtype, device=k.device)
    u = v
    for _ in range(iterations):
        u = 1.0 / torch.bmm(k, v).clamp_min(1e-10)
        v = 1.0 / torch.bmm(kt, u).clamp_min(1e-10)
    return u[..., 0], v[..., 0]


@ranking_loss()
def neuralndcg(
    scores: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    weights: torch.Tensor | None = None,
    reduction: str = "mean",
    temperature: float = 1.0,
    k: int | None = None,
    sinkhorn_iterations: int = 50,
) -> torch.Tensor:
    r"""NeuralNDCG: nDCG@k computed through a NeuralSort relaxation of the sort.

    ``P = sinkhorn(NeuralSort(s, tau))`` is a doubly stochastic "soft permutation" (row i ≈ the
    item at position i) and ``L_q = -(1/IDCG@k) sum_{i <= k} (P g)_i / log2(1 + i)`` with
    ``g = 2^y - 1``. Pobrotyn & Białobrzeski, "NeuralNDCG: Direct Optimisation of a Ranking
    Metric via Differentiable Relaxation of Sorting" (arXiv 2102.07831), with allRank's
    ``neuralNDCG`` defaults (tau = 1, 50 Sinkhorn iterations, deterministic variant). The one
    difference: rankwise's Sinkhorn normalises rows before columns and always runs its rounds,
    allRank's columns first with an early stop, so values agree to about 1e-3 on 100-item lists,
    not to float precision. As tau -> 0 it tends to the true nDCG@k.

    Args:
        temperature: tau of the NeuralSort relaxation (smaller: closer to the hard sort).
        k: nDCG cut-off (None: the whole list).
        sinkhorn_iterations: Sinkhorn normalisation steps that make the relaxed permutation doubly stochastic.

    Example:
        >>> from torch import tensor
        >>> from rankwise.losses import neuralndcg
        >>> # nDCG = 1: the relevant item is surely first
        >>> round(neuralndcg(tensor([[2.0, 0.0]]), tensor([[1.0, 0.0]]), temperature=0.01).item(), 4)
        -1.0
    """
    m = check_inputs(scores, labels, mask)
    tau = positive("temperature", temperature)
    kk = cutoff("k", k, scores.shape[1])
    if sinkhorn_iterations < 1:
        raise ConfigError(f"sinkhorn_iterations must be >= 1, got {sinkhorn_iterations}")
    k_mat = _neural_sort(scores, m, tau)
    u, v = _sinkhorn_scalings(k_mat, sinkhorn_iterations)
    y = labels.to(scores.dtype)
    g = gains(y, m)
    pos = torch.arange(1, scores.shape[1] + 1, device=scores.device, dtype=scores.dtype)
    disc = torch.where(pos <= kk, 1.0 / torch.log2(1.0 + pos), torch.zeros_like(pos))
    rows = (torch.arange(scores.shape[1], device=scores.device)[None, :] < m.sum(dim=1, keepdim=True)).to(scores.dtype)
    # (P g)_i with P = diag(u) K diag(v), for the real positions only
    pg = u * rows * torch.bmm(k_mat, (v * g)[..., None])[..., 0]
    dcg = (pg * disc[None]).sum(dim=1)
    idcg = ideal_dcg(y, m, kk)
    return reduce(-dcg / idcg.clamp_min(1e-12), idcg > 0, weights, reduction)

"""Pairwise losses: every (more relevant, less relevant) pair of a list, or of the whole batch (MW)."""

from __future__ import annotations

import torch

from rankwise.errors import ConfigError
from rankwise.losses._common import (
    NEG,
    check_inputs,
    cutoff,
    discount,
    gains,
    ideal_dcg,
    pair_mask,
    pairwise_logistic,
    positive,
    ranking_loss,
    ranks,
    reduce,
)


def _diffs(scores: torch.Tensor) -> torch.Tensor:
    return scores[:, :, None] - scores[:, None, :]


def _lambda_weights(scores: torch.Tensor, labels: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``|G_i - G_j| * |1/D(r_i) - 1/D(r_j)|`` under the current ranking (shared by LambdaRank and
    LiPO-λ), and the ranks it used."""
    r = ranks(scores, m)
    g = gains(labels.to(scores.dtype), m)
    d = discount(r, scores.dtype)
    return (g[:, :, None] - g[:, None, :]).abs() * (d[:, :, None] - d[:, None, :]).abs(), r


@ranking_loss()
def ranknet(
    scores: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    weights: torch.Tensor | None = None,
    reduction: str = "mean",
    sigma: float = 1.0,
) -> torch.Tensor:
    r"""RankNet: logistic loss on every ordered pair of a list.

    ``L_q = 1/|P_q| * sum_{(i,j) in P_q} log(1 + exp(-sigma (s_i - s_j)))`` with
    ``P_q = {(i, j) : y_i > y_j}`` (Burges et al., "Learning to Rank using Gradient Descent",
    ICML 2005). Averaged over the pairs of each list, then over lists (each list counts once).
    allRank's ``rankNet``, sentence-transformers' ``RankNetLoss`` and rax's ``pairwise_logistic_loss``
    average over every pair of the batch instead; the two agree when every list has as many pairs,
    and ``weights`` = each list's pair count reproduces theirs in general.

    Args:
        sigma: slope of the logistic on score differences, ``sigma * (s_i - s_j)``.

    Example:
        >>> import math
        >>> from torch import tensor
        >>> from rankwise.losses import ranknet
        >>> loss = ranknet(tensor([[1.0, 0.0]]), tensor([[1.0, 0.0]]))
        >>> round(loss.item(), 4), round(math.log(1 + math.exp(-1)), 4)
        (0.3133, 0.3133)
    """
    m = check_inputs(scores, labels, mask)
    s = positive("sigma", sigma)
    total, n = pairwise_logistic(s * _diffs(scores), pair_mask(labels, m))
    return reduce(total / n.clamp_min(1), n > 0, weights, reduction)


@ranking_loss()
def hinge(
    scores: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    weights: torch.Tensor | None = None,
    reduction: str = "mean",
    margin: float = 1.0,
) -> torch.Tensor:
    r"""Pairwise hinge (margin ranking) loss, as in RankSVM (Joachims, KDD 2002).

    ``L_q = 1/|P_q| * sum_{y_i > y_j} max(0, margin - (s_i - s_j))``.

    Args:
        margin: the score gap each more relevant item must keep over a less relevant one.

    Example:
        >>> from torch import tensor
        >>> from rankwise.losses import hinge
        >>> loss = hinge(tensor([[0.5, 0.0]]), tensor([[1.0, 0.0]]))
        >>> round(loss.item(), 4), round(max(0.0, 1.0 - 0.5), 4)
        (0.5, 0.5)
    """
    m = check_inputs(scores, labels, mask)
    if margin < 0:
        raise ConfigError(f"margin must be >= 0, got {margin}")
    pairs = pair_mask(labels, m)
    diff = _diffs(scores)
    term = torch.where(pairs, torch.relu(margin - diff), torch.zeros_like(diff))
    n = pairs.sum(dim=(1, 2))
    return reduce(term.sum(dim=(1, 2)) / n.clamp_min(1), n > 0, weights, reduction)


@ranking_loss(variant="scope", batch_level=True)
def mw(
    scores: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    weights: torch.Tensor | None = None,
    reduction: str = "mean",
    temperature: float = 0.01,
    scope: str = "global",
    normalize: str = "pairs",
    chunk: int = 4096,
) -> torch.Tensor:
    r"""Mann-Whitney (MW) loss: binary cross-entropy over positive-minus-negative differences.

    ``L = 1/|S+||S-| * sum_{p in S+} sum_{n in S-} log(1 + exp(-(s_p - s_n) / tau))``

    Sheikholeslami et al., "Optimizing What Matters: AUC-Driven Learning for Robust Neural
    Retrieval" (arXiv 2510.00137, 2025). Positives are items with label > 0, negatives items
    with label 0. ``scope="global"`` (the default, as in the paper) compares each positive with
    the negatives of *every* list of the batch, which makes scores comparable across queries (an
    upper bound on 1 - global AUC: ``1 - AUC <= L / log 2`` at tau = 1); ``scope="per_query"``
    compares within each list only (RankNet over positive/negative pairs). The paper sums over
    negatives and averages over positives (``normalize="positives"``: ``1/|S+| sum_p sum_n``);
    the default divides the sum by the number of pairs (``normalize="pairs"``, as LibAUC's
    ``PairwiseAUCLoss`` does). The two differ by the factor ``|S-|``, which matters under gradient
    clipping and a fixed learning rate, not for the minimiser. Pairs are processed in chunks of
    positives so memory stays ``O(chunk * |S-|)``.

    ``weights`` and ``reduction="none"`` apply to ``scope="per_query"``; the global loss is one
    number for the batch. Defaults follow the paper: tau = 0.01 on cosine similarities.

    Args:
        temperature: tau: pairs are compared as ``(s_p - s_n) / tau`` (the paper's default 0.01).
        scope: ``global`` (every positive against every negative of the batch, one value) or ``per_query`` (pairs within each list).
        normalize: ``pairs`` (mean over positive-negative pairs) or ``positives`` (the paper's: sum over negatives, mean over positives).
        chunk: positives compared per chunk in the global scope (bounds memory; the value does not change).

    Example:
        >>> import math
        >>> from torch import tensor
        >>> from rankwise.losses import mw
        >>> loss = mw(tensor([[0.3, 0.1], [0.2, 0.4]]), tensor([[1.0, 0.0], [0.0, 1.0]]), temperature=1.0)
        >>> round(loss.item(), 4), round(sum(math.log1p(math.exp(-d)) for d in (0.2, 0.1, 0.3, 0.2)) / 4, 4)
        (0.5988, 0.5988)
    """
    m = check_inputs(scores, labels, mask)
    tau = positive("temperature", temperature)
    pos = (labels > 0) & m
    neg = (labels <= 0) & m
    if normalize not in ("pairs", "positives"):
        raise ConfigError(f"normalize must be 'pairs' or 'positives', got {normalize!r}")
    if scope == "per_query":
        both = pos[:, :, None] & neg[:, None, :]
        total, n = pairwise_logistic(_diffs(scores) / tau, both)
        per = n if normalize == "pairs" else pos.sum(dim=1)
        return reduce(total / per.clamp_min(1), n > 0, weights, reduction)
    if scope != "global":
        raise ConfigError(f"scope must be 'global' or 'per_query', got {scope!r}")
    if reduction != "mean" or weights is not None:
        raise ConfigError(
            "mw with scope='global' is one value for the batch: use reduction='mean' and no weights, or scope='per_query'"
        )
    p, n = scores[pos], scores[neg]
    if p.numel() == 0 or n.numel() == 0:
        return scores.sum() * 0.0
    total = scores.new_zeros(())
    for start in range(0, p.numel(), chunk):
        total = total + torch.nn.functional.softplus(-(p[start : start + chunk, None] - n[None, :]) / tau).sum()
    return total / (p.numel() * (n.numel() if normalize == "pairs" else 1))


@ranking_loss()
def lambdarank(
    scores: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    weights: torch.Tensor | None = None,
    reduction: str = "mean",
    sigma: float = 1.0,
    k: int | None = None,
) -> torch.Tensor:
    r"""LambdaRank: pairwise logistic loss weighted by the |ΔNDCG| of swapping the pair.

    ``L_q = sum_{y_i > y_j} |ΔNDCG_ij| * log(1 + exp(-sigma (s_i - s_j)))`` with
    ``|ΔNDCG_ij| = |G_i - G_j| * |1/D(r_i) - 1/D(r_j)| / IDCG_q``, ``G = 2^y - 1``,
    ``D(r) = log2(1 + r)`` and ``r`` the item's rank under the current scores (no gradient).
    Burges, "From RankNet to LambdaRank to LambdaMART: An Overview" (MSR-TR-2010-82); this is
    the LambdaLoss paper's "LambdaRank" weighting (Wang et al., CIKM 2018; allRank's
    ``lamdbaRank_scheme``, sic). With ``k``, only pairs with an item in the top k count (Eq. 18).

    Args:
        sigma: slope of the pairwise logistic.
        k: nDCG cut-off of the swap weights |ΔNDCG@k| (None: the whole list).

    Example:
        >>> import math
        >>> from torch import tensor
        >>> from rankwise.losses import lambdarank
        >>> e = math.e
        >>> loss = lambdarank(tensor([[0.0, 1.0]]), tensor([[1.0, 0.0]]))
        >>> round(loss.item(), 4), round((1 - 1 / math.log2(3)) * math.log(1 + e), 4)
        (0.4847, 0.4847)
    """
    m = check_inputs(scores, labels, mask)
    s = positive("sigma", sigma)
    kk = None if k is None else cutoff("k", k, scores.shape[1])
    w, r = _lambda_weights(scores, labels, m)
    idcg = ideal_dcg(labels.to(scores.dtype), m, kk)
    w = w / idcg.clamp_min(1e-12)[:, None, None]
    pairs = pair_mask(labels, m)
    if kk is not None:
        pairs = pairs & ((r[:, :, None] <= kk) | (r[:, None, :] <= kk))
    total, n = pairwise_logistic(s * _diffs(scores), pairs, w.detach())
    return reduce(total, (n > 0) & (idcg > 0), weights, reduction)


@ranking_loss()
def lipo(
    scores: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    weights: torch.Tensor | None = None,
    reduction: str = "mean",
    beta: float = 1.0,
) -> torch.Tensor:
    r"""LiPO-λ: lambda-weighted pairwise logistic loss over a preference list.

    ``L_q = -sum_{psi_i > psi_j} Δ_ij log sigmoid(beta (s_i - s_j))`` with
    ``Δ_ij = |G_i - G_j| * |1/D(r_i) - 1/D(r_j)|``, ``G = 2^psi - 1``, ``D(r) = log2(1 + r)``,
    ranks from the current scores (constant weights). Liu et al., "LiPO: Listwise Preference
    Optimization through Learning-to-Rank" (arXiv 2402.01878). For an LLM, ``scores`` are the
    log-likelihood ratios ``log pi(y|x) - log pi_ref(y|x)`` of each response and ``beta`` the
    DPO coefficient; for a retriever they are its scores. No official code is published: the
    weights follow the paper's LambdaLoss form without IDCG normalisation (so, unlike
    :func:`lambdarank`, lists with more relevance mass weigh more). A two-item list is DPO.

    Args:
        beta: scale of the score differences (LiPO's beta).

    Example:
        >>> import math
        >>> from torch import tensor
        >>> from rankwise.losses import lipo
        >>> e = math.e
        >>> loss = lipo(tensor([[0.0, 1.0]]), tensor([[1.0, 0.0]]))
        >>> round(loss.item(), 4), round((1 - 1 / math.log2(3)) * math.log(1 + e), 4)
        (0.4847, 0.4847)
    """
    m = check_inputs(scores, labels, mask)
    b = positive("beta", beta)
    w, _ = _lambda_weights(scores, labels, m)
    total, n = pairwise_logistic(b * _diffs(scores), pair_mask(labels, m), w.detach())
    return reduce(total, n > 0, weights, reduction)


@ranking_loss()
def diffkendall(
    scores: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    weights: torch.Tensor | None = None,
    reduction: str = "mean",
    alpha: float = 0.5,
    beta: float = 1.0,
) -> torch.Tensor:
    r"""Differentiable Kendall tau between scores and labels (negated, to minimise).

    ``t(z) = sigmoid(beta alpha z) - sigmoid(-beta alpha z)`` (a soft sign) and
    ``L_q = -sum_{i != j} t(s_i - s_j) t(y_i - y_j) / (n (n - 1) / 2)``, over the list's n real
    items: ParZC's ``diffkendall`` (pprp/PicoNAS ``piconas/core/losses/diffkd.py``; alpha = 0.5,
    beta = 1), after DiffKendall (Zheng et al., NeurIPS 2023). The sum runs over ordered pairs
    and the count over unordered ones, as in that code, so the value is -2 x the soft tau.

    Args:
        alpha: slope of the tanh that replaces sign() on the scores.
        beta: slope of the tanh on the labels.

    Example:
        >>> import math
        >>> from torch import tensor
        >>> from rankwise.losses import diffkendall
        >>> loss = diffkendall(tensor([[1.0, 0.0]]), tensor([[1.0, 0.0]]))
        >>> round(loss.item(), 4), round(-2 * math.tanh(0.25) ** 2, 4)
        (-0.12, -0.12)
    """
    m = check_inputs(scores, labels, mask)
    ab = positive("alpha", alpha) * positive("beta", beta)
    y = labels.to(scores.dtype)
    both = m[:, :, None] & m[:, None, :]
    ts = torch.tanh(ab * _diffs(scores) / 2)  # sigmoid(z) - sigmoid(-z) = tanh(z/2)
    ty = torch.tanh(ab * (y[:, :, None] - y[:, None, :]) / 2)
    total = torch.where(both, ts * ty, torch.zeros_like(ts)).sum(dim=(1, 2))
    n = m.sum(dim=1).to(scores.dtype)
    return reduce(-total / (n * (n - 1) / 2).clamp_min(1), n > 1, weights, reduction)


@ranking_loss(variant="positions")
def irpo(
    scores: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    weights: torch.Tensor | None = None,
    reduction: str = "mean",
    beta: float = 1.0,
    positions: str = "scores",
) -> torch.Tensor:
    r"""IRPO: in-context ranking preference optimisation (DPO over a list, by position and relevance).

    ``z_i = log( (1/(n-1)) sum_{j != i} exp(beta (s_j - s_i)) )`` and
    ``L_q = -(1/n) sum_i w_i log sigmoid(-z_i)`` over the list's n real items, with
    ``w_i = (2^{y_i} - 1) / log2(1 + p_i)`` and ``p_i`` the item's 1-based position. Wu et al.,
    "In-context Ranking Preference Optimization" (COLM 2025, arXiv 2504.15477; the authors'
    ``rdpo_loss``, which averages over the other items inside the log as here). For an LLM,
    ``scores`` are ``log pi(y|x) - log pi_ref(y|x)`` of each item; for any other model its scores.
    ``positions="scores"``: the position in the list the current scores rank (no gradient; the
    paper's on-policy lists); ``"given"``: the column order of the list as it was shown.
    A two-item list with one relevant item at position 1 is half of DPO.

    Args:
        beta: scale of the score differences (DPO's beta).
        positions: ``"scores"`` or ``"given"`` (see above).

    Example:
        >>> import math
        >>> from torch import tensor
        >>> from rankwise.losses import irpo
        >>> loss = irpo(tensor([[0.0, 1.0]]), tensor([[1.0, 0.0]]), positions="given")
        >>> round(loss.item(), 4), round(0.5 * math.log(1 + math.e), 4)
        (0.6566, 0.6566)
    """
    m = check_inputs(scores, labels, mask)
    b = positive("beta", beta)
    if positions == "scores":
        p = ranks(scores, m)
    elif positions == "given":
        p = torch.cumsum(m.long(), dim=1)
    else:
        raise ConfigError(f"irpo positions must be 'scores' or 'given', got {positions!r}")
    w = gains(labels.to(scores.dtype), m) * discount(p, scores.dtype)
    others = m[:, None, :] & m[:, :, None] & ~torch.eye(m.shape[1], dtype=torch.bool, device=m.device)
    diff = (b * (scores[:, None, :] - scores[:, :, None])).masked_fill(
        ~others, NEG
    )  # finite: a one-item row keeps a gradient path
    n = m.sum(dim=1)
    z = torch.logsumexp(diff, dim=2) - torch.log((n - 1).clamp_min(1).to(scores.dtype))[:, None]
    term = torch.where(m & (w > 0), w * torch.nn.functional.softplus(z), torch.zeros_like(z))
    per_list = term.sum(dim=1) / n.clamp_min(1).to(scores.dtype)
    return reduce(per_list, (n > 1) & (w > 0).any(dim=1), weights, reduction)

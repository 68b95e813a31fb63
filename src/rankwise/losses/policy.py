"""Policy-gradient training of a ranking policy: Neural PG-Rank."""

from __future__ import annotations

import torch

from rankwise.errors import ConfigError
from rankwise.losses._common import NEG, check_inputs, cutoff, gains, ideal_dcg, positive, ranking_loss, reduce
from rankwise.losses.listwise import _pl_log_probs


@ranking_loss()
def pg_rank(
    scores: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    weights: torch.Tensor | None = None,
    reduction: str = "mean",
    n_samples: int = 8,
    k: int | None = None,
    temperature: float = 1.0,
    seed: int | None = None,
) -> torch.Tensor:
    r"""REINFORCE on Plackett-Luce rankings with nDCG@k as the reward (Neural PG-Rank).

    The scores define a Plackett-Luce policy ``pi(r) = prod_k exp(s_{r_k}/tau) / sum_{j not yet
    placed} exp(s_j/tau)``. ``n_samples`` rankings are drawn per list by Gumbel-top-k (no
    gradient), each rewarded with its nDCG@k, and::

        L_q = -1/N sum_i (R_i - b_i) log pi(r_i),    b_i = 1/(N-1) sum_{j != i} R_j

    (leave-one-out baseline), with ``k = None`` meaning the whole list. Gao et al., "Policy-Gradient Training of Language Models for
    Ranking" (arXiv 2310.04407). The authors' code is not public; this implements the
    estimator described there with the leave-one-out baseline, and ``log pi`` counts only the
    first k placements, the only ones the reward depends on. The value is a surrogate whose
    gradient is the policy gradient (its expectation is 0). ``seed`` makes the sampling
    repeatable (a fresh generator per call); otherwise the global torch RNG is used.
    Lists without a relevant item (no reward signal) are skipped.

    Args:
        n_samples: rankings sampled per list (>= 2, for the leave-one-out baseline).
        k: the reward is nDCG@k (None: the whole list).
        temperature: tau of the Plackett-Luce policy.
        seed: seed of the sampling (None: the global torch RNG).

    Example:
        >>> from torch import tensor
        >>> from rankwise.losses import pg_rank
        >>> # every ranking earns nDCG 1: no advantage, no gradient
        >>> round(pg_rank(tensor([[1.0, 0.0]]), tensor([[1.0, 1.0]]), seed=0).item(), 4)
        0.0
    """
    m = check_inputs(scores, labels, mask)
    tau = positive("temperature", temperature)
    if int(n_samples) != n_samples or n_samples < 2:
        raise ConfigError(f"n_samples must be an integer >= 2 (leave-one-out baseline), got {n_samples}")
    n_lists, size = scores.shape
    kk = cutoff("k", k, size)
    x = (scores / tau).masked_fill(~m, NEG)
    with torch.no_grad():
        gen = torch.Generator(device=scores.device).manual_seed(seed) if seed is not None else None
        u = torch.rand((n_lists, n_samples, size), generator=gen, device=scores.device, dtype=scores.dtype)
        gumbel = -torch.log(-torch.log(u.clamp(1e-20, 1 - 1e-12)))
        order = torch.argsort(x.detach()[:, None, :] + gumbel.masked_fill(~m[:, None, :], 0.0), dim=2, descending=True)
        y = labels.to(scores.dtype)
        g_sorted = torch.gather(gains(y, m)[:, None, :].expand(-1, n_samples, -1), 2, order)
        pos = torch.arange(1, size + 1, device=scores.device, dtype=scores.dtype)
        disc = torch.where(pos <= kk, 1.0 / torch.log2(1.0 + pos), torch.zeros_like(pos))
        idcg = ideal_dcg(y, m, kk)
        reward = (g_sorted * disc).sum(dim=2) / idcg.clamp_min(1e-12)[:, None]  # [q, N]
        baseline = (reward.sum(dim=1, keepdim=True) - reward) / (n_samples - 1)
        advantage = reward - baseline
    # the same Plackett-Luce log-probabilities as ListMLE, over [lists * samples] rankings
    flat = (n_lists * n_samples, size)
    logp, valid = _pl_log_probs(
        x[:, None, :].expand(-1, n_samples, -1).reshape(flat),
        order.reshape(flat),
        m[:, None, :].expand(-1, n_samples, -1).reshape(flat),
    )
    log_pi = torch.where(valid & (pos <= kk)[None, :], logp, torch.zeros_like(logp)).sum(dim=1).view(n_lists, n_samples)
    per_list = -(advantage * log_pi).mean(dim=1)
    return reduce(per_list, idcg > 0, weights, reduction)

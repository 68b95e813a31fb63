"""Distillation losses: match a teacher's scores (``teacher_scores``, same shape as ``scores``)."""

from __future__ import annotations

import torch

from rankwise.errors import ConfigError
from rankwise.losses._common import NEG, check_inputs, masked_log_softmax, pair_mask, positive, ranking_loss, reduce


def _teacher(name: str, scores: torch.Tensor, teacher_scores: torch.Tensor | None) -> torch.Tensor:
    if teacher_scores is None:
        raise ConfigError(f"{name} needs teacher_scores= (the teacher's scores, same shape as scores)")
    if teacher_scores.shape != scores.shape:
        raise ValueError(
            f"teacher_scores shape {tuple(teacher_scores.shape)} differs from scores shape {tuple(scores.shape)}"
        )
    return teacher_scores.detach().to(scores.dtype)


@ranking_loss(needs_teacher=True)
def margin_mse(
    scores: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    teacher_scores: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Margin-MSE: match the teacher's score margins, not its scores.

    ``L_q = 1/|P_q| sum_{y_i > y_j} ((s_i - s_j) - (t_i - t_j))^2``. Hofstätter et al.,
    "Improving Efficient Neural Ranking Models with Cross-Architecture Knowledge Distillation"
    (arXiv 2010.02666; ``margin_mse_loss.py``): margins are invariant to the offset and scale
    differences between a cross-encoder teacher and a dual-encoder student. The paper's
    (query, positive, negative) triple is the one-pair case; with in-batch lists every
    (more relevant, less relevant) pair counts, as TAS-Balanced's in-batch term.

    Example:
        >>> from torch import tensor
        >>> from rankwise.losses import margin_mse
        >>> loss = margin_mse(tensor([[2.0, 1.0]]), tensor([[1.0, 0.0]]), teacher_scores=tensor([[5.0, 1.0]]))
        >>> round(loss.item(), 4), round(float(((2 - 1) - (5 - 1)) ** 2), 4)
        (9.0, 9.0)
    """
    m = check_inputs(scores, labels, mask)
    t = _teacher("margin_mse", scores, teacher_scores)
    pairs = pair_mask(labels, m)
    err = ((scores[:, :, None] - scores[:, None, :]) - (t[:, :, None] - t[:, None, :])) ** 2
    n = pairs.sum(dim=(1, 2))
    return reduce(
        torch.where(pairs, err, torch.zeros_like(err)).sum(dim=(1, 2)) / n.clamp_min(1), n > 0, weights, reduction
    )


@ranking_loss(needs_teacher=True)
def kl(
    scores: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    teacher_scores: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
    reduction: str = "mean",
    temperature: float = 1.0,
    teacher_temperature: float = 1.0,
) -> torch.Tensor:
    r"""Listwise KL divergence from the teacher's softmax to the student's.

    ``L_q = sum_i p_i (log p_i - log q_i)`` with ``p = softmax(t / tau_t)`` and
    ``q = softmax(s / tau)`` over the real items (Hinton et al., "Distilling the Knowledge in a
    Neural Network", 2015; the listwise distillation of RocketQAv2, AR2 and
    sentence-transformers' ``DistillKLDivLoss``). ``labels`` are not used beyond the contract.

    Args:
        temperature: tau on the student's scores.
        teacher_temperature: tau on the teacher's scores.

    Example:
        >>> import math
        >>> from torch import tensor
        >>> from rankwise.losses import kl
        >>> loss = kl(tensor([[0.0, 0.0]]), tensor([[1.0, 0.0]]), teacher_scores=tensor([[math.log(3), 0.0]]))
        >>> round(loss.item(), 4), round(3 / 4 * math.log(3 / 2) + 1 / 4 * math.log(1 / 2), 4)
        (0.1308, 0.1308)
    """
    m = check_inputs(scores, labels, mask)
    t = _teacher("kl", scores, teacher_scores)
    logq = masked_log_softmax(scores / positive("temperature", temperature), m)
    logp = masked_log_softmax(t / positive("teacher_temperature", teacher_temperature), m)
    term = torch.where(m, logp.exp() * (logp - logq), torch.zeros_like(logq))
    return reduce(term.sum(dim=1), m.any(dim=1), weights, reduction)


@ranking_loss(needs_teacher=True)
def ar2(
    scores: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    teacher_scores: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
    reduction: str = "mean",
    adv_lambda: float = 0.5,
    teacher_temperature: float = 1.0,
) -> torch.Tensor:
    r"""AR2's retriever loss: distillation from the ranker plus the adversarial reward term.

    Over a query's candidates (its positive and the retriever's hard negatives), with the
    retriever's ``p = softmax(s)`` and the ranker's logits ``z`` (``teacher_scores``):
    ``L_q = lambda * sum_d r_d log p_d + (1 - lambda) * (-sum_d softmax(z / tau)_d log p_d)``,
    where ``r_d = log sigmoid(z+ - z_d)`` is the ranker's reward (``z+``: its highest-scored
    positive; no gradient through ``z``). Zhang et al., "Adversarial Retriever-Ranker for Dense
    Text Retrieval" (ICLR 2022; ``AR2/wiki/co_training_wiki_train.py``: ``adv_lambda`` 0.5,
    ``temperature_normal`` 1). The adversarial term raises the retriever's probability of the
    candidates that fool the ranker (the minimax game's generator step); the distillation term
    pulls it toward the ranker's distribution.

    Args:
        adv_lambda: weight of the adversarial term (1 - it: the distillation term's).
        teacher_temperature: tau on the ranker's logits in the distillation term.

    Example:
        >>> import math
        >>> from torch import tensor
        >>> from rankwise.losses import ar2
        >>> s, z = [1.0, 0.0], [2.0, 1.0]
        >>> loss = ar2(tensor([s]), tensor([[1.0, 0.0]]), teacher_scores=tensor([z]))
        >>> logp = [si - math.log(sum(math.exp(x) for x in s)) for si in s]
        >>> pz = [math.exp(zi) / sum(math.exp(x) for x in z) for zi in z]
        >>> reward = [math.log(1 / (1 + math.exp(-(z[0] - zi)))) for zi in z]
        >>> adv = sum(r * lp for r, lp in zip(reward, logp))
        >>> normal = -sum(p * lp for p, lp in zip(pz, logp))
        >>> round(loss.item(), 4), round(0.5 * adv + 0.5 * normal, 4)
        (0.6054, 0.6054)
    """
    m = check_inputs(scores, labels, mask)
    t = _teacher("ar2", scores, teacher_scores)
    if not 0 <= adv_lambda <= 1:
        raise ConfigError(f"adv_lambda must be in [0, 1], got {adv_lambda}")
    logp = masked_log_softmax(scores, m)
    target = masked_log_softmax(t / positive("teacher_temperature", teacher_temperature), m).exp()
    rel = (labels > 0) & m
    best_pos = torch.where(rel, t, torch.full_like(t, NEG)).max(dim=1, keepdim=True).values
    best_pos = torch.where(rel.any(dim=1, keepdim=True), best_pos, torch.zeros_like(best_pos))  # no positive: no loss
    reward = torch.nn.functional.logsigmoid(best_pos - t)
    zero = torch.zeros_like(logp)
    adv = torch.where(m, reward * logp, zero).sum(dim=1)
    normal = -torch.where(m, target * logp, zero).sum(dim=1)
    return reduce(adv_lambda * adv + (1 - adv_lambda) * normal, rel.any(dim=1) & (m.sum(1) > 1), weights, reduction)

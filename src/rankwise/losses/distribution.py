"""Batch-level distribution matching: the Wasserstein list loss of SyCL."""

from __future__ import annotations

import torch

from rankwise.errors import ConfigError
from rankwise.losses._common import NEG, check_inputs, positive, ranking_loss


@ranking_loss(batch_level=True)
def wasserstein(
    scores: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    weights: torch.Tensor | None = None,
    reduction: str = "mean",
    temperature: float = 1.0,
) -> torch.Tensor:
    r"""2-Wasserstein distance between Gaussian fits of predicted and target list distributions.

    Rows are distributions over the (shared) columns: ``P = softmax(S / tau)`` and
    ``Q = softmax(Y)`` (targets ∝ exp(label), so grades 3/2/1/0 become a graded target). Each
    set of rows is treated as samples of a column-dimensional vector, fitted by its mean and
    sample covariance, and::

        W2^2 = ||mu_P - mu_Q||^2 + Tr(Sigma_P + Sigma_Q - 2 (Sigma_P Sigma_Q)^{1/2})

    Esfandiarpoor et al., "Beyond Contrastive Learning: Synthetic Data Enables List-wise
    Training with Multiple Levels of Relevance" (SyCL, Findings of EMNLP 2025): this follows
    the authors' ``train.py::WS2Loss`` rather than a per-list 1-D Wasserstein. The trace of the
    square root is computed from the eigenvalues of ``M M^T`` with ``M = C_P C_Q^T / (B - 1)``
    (the same non-zero spectrum as ``Sigma_P Sigma_Q``, "fast FID") in float64, with 1e-15
    added before the square root as there. tau = 1 is the authors' default.

    It is one value for the whole batch and compares rows column by column, so the columns
    must mean the same documents in every row (the in-batch matrix) and it is invariant to
    permuting columns, not to permuting one row alone. Padded entries get probability 0.

    Args:
        temperature: tau of the score softmax.

    Example:
        >>> import math
        >>> from torch import tensor
        >>> from rankwise.losses import wasserstein
        >>> e = math.e
        >>> loss = wasserstein(tensor([[0.0, 0.0]]), tensor([[1.0, 0.0]]))
        >>> round(loss.item(), 4), round(float(2 * (e / (1 + e) - 0.5) ** 2), 4)
        (0.1068, 0.1068)
    """
    m = check_inputs(scores, labels, mask)
    tau = positive("temperature", temperature)
    if weights is not None or reduction != "mean":
        raise ConfigError("wasserstein is one value for the batch: use reduction='mean' and no weights")
    rows = m.any(dim=1)
    if not bool(rows.any()):
        return scores.sum() * 0.0
    s, y, mm = scores[rows], labels[rows].to(scores.dtype), m[rows]
    p = torch.softmax((s / tau).masked_fill(~mm, NEG), dim=1).to(torch.float64)
    q = torch.softmax(y.masked_fill(~mm, NEG), dim=1).to(torch.float64)
    mean_term = ((p.mean(0) - q.mean(0)) ** 2).sum()
    b = p.shape[0]
    if b < 2:
        return mean_term.to(scores.dtype)
    cp, cq = p - p.mean(0), q - q.mean(0)
    tr_p = (cp**2).sum() / (b - 1)
    tr_q = (cq**2).sum() / (b - 1)
    mmat = cp @ cq.T / (b - 1)
    eig = torch.linalg.eigvalsh(mmat @ mmat.T).clamp_min(0.0)
    tr_sqrt = torch.sqrt(eig + 1e-15).sum()
    return (mean_term + tr_p + tr_q - 2 * tr_sqrt).to(scores.dtype)

"""Training diagnostics: why a recipe works, measured on the batches it trains on.

Every ``diagnostics_every`` steps, from the step's score matrix (no extra encoding):

- ``hard_rank``: mean rank (1 = top) of the sampled hard negatives among all of the query's
  candidates under the current model, and ``hard_margin``: mean score of the query's positive
  minus its hard negative's. Negatives that stay easy (low rank, large margin) teach little.
- ``fn_rate``: estimated share of false negatives among the sampled hard negatives: those the
  teacher scores at or above the positive, where teacher scores exist, else those the model itself
  scores above the positive (its own confidence).
- ``grad_top_share`` and ``grad_eff_queries``: how the loss's gradient is spread over the batch's
  queries (each query's share of ``sum |dL/ds|``): the largest share, and the effective number of
  queries ``1 / sum share**2`` (the batch size when every query gets the same).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def batch_diagnostics(
    scores: torch.Tensor, loss: torch.Tensor, batch, examples: Sequence, mask: torch.Tensor | None = None
) -> dict[str, float]:
    out: dict[str, float] = {}
    s = scores.detach().float()
    m = torch.ones_like(s, dtype=torch.bool) if mask is None else mask.to(s.device).bool()  # any caller's device
    ranks, margins, false = [], [], []
    hard = getattr(batch, "hard", None) or [[] for _ in range(len(s))]
    for i, own in enumerate(hard):
        if not own:
            continue
        row = s[i].masked_fill(~m[i], float("-inf"))
        pos = float(row[batch.positive[i]])
        teacher = getattr(examples[i], "scores", None) if i < len(examples) else None
        for c, j in own:
            ranks.append(1 + int((row > row[c]).sum()))
            margins.append(pos - float(row[c]))
            if teacher is not None:
                false.append(teacher.negatives[j] >= teacher.positives[batch.positive_index[i]])
            else:
                false.append(float(row[c]) > pos)
    if ranks:
        out |= {
            "hard_rank": float(np.mean(ranks)),
            "hard_margin": float(np.mean(margins)),
            "fn_rate": float(np.mean(false)),
        }
    if scores.requires_grad and loss.requires_grad:
        (g,) = torch.autograd.grad(loss, scores, retain_graph=True, allow_unused=True)
        if g is not None:
            per_query = g.detach().abs().float().sum(dim=1)
            total = float(per_query.sum())
            if total > 0:
                share = per_query / total
                out |= {"grad_top_share": float(share.max()), "grad_eff_queries": float(1.0 / (share**2).sum())}
    return out

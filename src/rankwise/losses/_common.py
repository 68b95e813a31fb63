"""Shared pieces of the (scores, labels, mask) loss contract: checks, reductions, ranks, gains.

Conventions every loss follows (each docstring says where it departs):

* ``scores``, ``labels`` and ``mask`` are ``[n_lists, list_size]``; ``mask`` is True for real
  items (None = all real). Padded items never influence a value or a gradient.
* An item is *relevant* when its label is > 0. A list with no relevant item, or with fewer than
  the items a loss needs, has no defined loss: it is left out of the mean (``reduction="none"``
  gives it 0), so such lists never produce NaN.
* ``weights`` (``[n_lists]``) weight each list in the reduction.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch

from rankwise.errors import ConfigError

F = TypeVar("F", bound=Callable)

NEG = -1e30  # stands in for -inf where a masked softmax must stay finite in float32 and float64


def check_inputs(scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Validate shapes and return a boolean mask (all True when ``mask`` is None)."""
    if scores.ndim != 2:
        raise ValueError(f"scores must be [n_lists, list_size], got shape {tuple(scores.shape)}")
    if labels.shape != scores.shape:
        raise ValueError(f"labels shape {tuple(labels.shape)} differs from scores shape {tuple(scores.shape)}")
    if mask is None:
        return torch.ones_like(scores, dtype=torch.bool)
    if mask.shape != scores.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} differs from scores shape {tuple(scores.shape)}")
    return mask.bool()


def positive(name: str, value: float) -> float:
    if not value > 0:
        raise ConfigError(f"{name} must be > 0, got {value}")
    return float(value)


def cutoff(name: str, k: int | None, list_size: int) -> int:
    """A rank cut-off: None means the whole list; k > list size is an error naming ``name``."""
    if k is None:
        return list_size
    if int(k) != k or k < 1:
        raise ConfigError(f"{name} must be a positive integer, got {k}")
    if k > list_size:
        raise ConfigError(f"{name}={k} is larger than the list size {list_size}")
    return int(k)


def reduce(per_list: torch.Tensor, valid: torch.Tensor, weights: torch.Tensor | None, reduction: str) -> torch.Tensor:
    """Reduce per-list losses over the lists that have a defined loss (``valid``).

    Lists without one are left out rather than counted as 0, so the mean is over lists that
    carry signal; an all-invalid batch gives 0 with a gradient path.
    """
    w = valid.to(per_list.dtype)
    if weights is not None:
        w = w * weights.to(per_list.dtype)
    per_list = torch.where(valid, per_list, torch.zeros_like(per_list))
    if reduction == "none":
        return per_list * w
    total = (per_list * w).sum()
    if reduction == "sum":
        return total
    if reduction == "mean":
        return total / w.sum().clamp_min(1e-12)  # an all-invalid batch: 0 / eps = 0, gradient path kept
    raise ConfigError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def masked_log_softmax(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """log-softmax over the real items of each row (padded entries get a very low value)."""
    return torch.log_softmax(logits.masked_fill(~mask, NEG), dim=1)


@torch.no_grad()
def ranks(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """1-based rank of each item by descending score (padded items last; ties by position)."""
    order = torch.argsort(scores.masked_fill(~mask, float("-inf")), dim=1, descending=True, stable=True)
    r = torch.empty_like(order)
    r.scatter_(1, order, torch.arange(1, scores.shape[1] + 1, device=scores.device).expand_as(order))
    return r


def gains(labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """nDCG gain ``2^label - 1`` (0 for padded items)."""
    return torch.where(mask, torch.pow(2.0, labels.clamp_min(0)) - 1, torch.zeros_like(labels))


def discount(rank: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``1 / log2(1 + rank)`` for 1-based ranks."""
    return 1.0 / torch.log2(1.0 + rank.to(dtype))


def ideal_dcg(labels: torch.Tensor, mask: torch.Tensor, k: int | None = None) -> torch.Tensor:
    """Best achievable DCG@k of each list (gain 2^label - 1)."""
    g = torch.sort(gains(labels, mask), dim=1, descending=True).values
    pos = torch.arange(1, g.shape[1] + 1, device=g.device, dtype=g.dtype)
    d = 1.0 / torch.log2(1.0 + pos)
    if k is not None:
        d = torch.where(pos <= k, d, torch.zeros_like(d))
    return (g * d).sum(dim=1)


def pair_mask(labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``[n, L, L]``: True where item i is more relevant than item j and both are real."""
    both = mask[:, :, None] & mask[:, None, :]
    return both & (labels[:, :, None] > labels[:, None, :])


def pairwise_logistic(
    diff: torch.Tensor, pairs: torch.Tensor, weights: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum over ``pairs`` of ``w_ij * softplus(-diff_ij) = -w_ij log sigma(diff_ij)`` per list, and the pair count.

    The one primitive behind RankNet, MW, LambdaRank, LambdaLoss, LiPO and STAR.
    """
    term = torch.nn.functional.softplus(-diff)
    if weights is not None:
        term = term * weights
    term = torch.where(pairs, term, torch.zeros_like(term))
    return term.sum(dim=(1, 2)), pairs.sum(dim=(1, 2))


LN2 = math.log(2.0)


@dataclass(frozen=True)
class LossFacts:
    """What the registry, the trainer and the contract tests need to know about a loss.

    ``variant``: the parameter a bare spec value sets (``lambdaloss:ndcg2pp``); ``needs_teacher``:
    it reads ``teacher_scores``; ``batch_level``: it compares items across lists, so it needs the
    same columns in every row (one value for the batch); ``shift_invariant``: adding a constant to
    a list's scores leaves it unchanged.
    """

    variant: str | None = None
    needs_teacher: bool = False
    batch_level: bool = False
    shift_invariant: bool = True


def ranking_loss(**facts: object) -> Callable[[F], F]:
    """Mark a function as a registered loss and keep its facts beside it (``fn.facts``)."""

    def mark(fn: F) -> F:
        fn.facts = LossFacts(**facts)  # type: ignore[attr-defined]
        return fn

    return mark

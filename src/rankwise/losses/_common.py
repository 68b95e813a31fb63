"""Shared checks and reductions for the (scores, labels, mask) loss contract."""

from __future__ import annotations

import torch

from rankwise.errors import ConfigError


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


def reduce(per_list: torch.Tensor, valid: torch.Tensor, weights: torch.Tensor | None, reduction: str) -> torch.Tensor:
    """Reduce per-list losses over the lists that have a defined loss (``valid``).

    Lists without one (no positive, all padding) are left out rather than counted as 0, so the
    mean is over lists that carry signal; an all-invalid batch gives 0 with a gradient path.
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
        return total / w.sum().clamp_min(1e-12) if bool(w.sum() > 0) else total * 0.0
    raise ConfigError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")

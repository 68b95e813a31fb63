"""Best checkpoint: which evaluated step's model to keep.

The step with the best mean on the eval split is not always the one to keep: a later step that is
better by noise costs the training after the earlier one and fits the eval split more. rankwise
keeps the earliest evaluated step whose per-query values are not significantly worse than the
best step's (paired t-test at ``alpha``, as :mod:`rankwise.metrics.significance` computes it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from rankwise.metrics.significance import paired_t_test


@dataclass(frozen=True)
class BestStep:
    step: int  # the step kept
    best: int  # the step with the best mean
    mean: float
    best_mean: float
    p: float  # paired t-test of step against best (1.0 when they are the same step)


def choose_step(per_step: Mapping[int, np.ndarray], alpha: float = 0.05) -> BestStep:
    """``per_step``: each evaluated step's per-query values (the same queries, in the same order)."""
    if not per_step:
        raise ValueError("no evaluated steps to choose from")
    means = {s: float(np.mean(v)) for s, v in per_step.items()}
    best = max(sorted(means), key=lambda s: means[s])  # the earliest of equal bests
    for step in sorted(per_step):
        p = 1.0 if step == best else paired_t_test(per_step[step], per_step[best])
        if step == best or (means[step] <= means[best] and p >= alpha):
            return BestStep(step, best, means[step], means[best], p)
    raise AssertionError("unreachable: the best step is always kept")

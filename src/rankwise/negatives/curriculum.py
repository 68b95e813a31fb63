"""Difficulty curricula (``--curriculum``): MacAvaney et al., "Training Curricula for Open Domain
Answer Re-Ranking" (SIGIR 2020), after OpenNIR's ``pairwise_cl``.

Heuristics, chosen by name, from the mining retriever's ranks and scores of the query's
positive p and its sampled hard negatives n_1..n_k (kept by ``rankwise mine``):

* ``reciprank``: h(d) = 1 / rank(d);
* ``normscore``: h(d) = (s(d) - min_q) / (max_q - min_q) over the query's mined scores;
* ``kdescore``: h(d) = CDF at s(d) of a Gaussian KDE fitted to the query's mined scores.

Easiness of a training sample (pairwise form): ``w = min_k (h(p) - h(n_k) + 1) / 2 + 1e-8``;
a positive ranked high with negatives ranked low is easy and weighs close to 1, a hard sample
close to 0. Over the first ``steps`` training steps the weights anneal linearly to uniform,
``W = w (1 - i/m) + i/m``, and are 1 from step m on. ``anti=true`` uses 1 - w.

``mode=sample`` (default) weights each query's loss by its own W; ``mode=batch`` multiplies the
batch loss by the batch mean of W, which is what OpenNIR's code does. A sample without mined
ranks (e.g. in-batch only) has w = 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rankwise.batch import hard_negatives
from rankwise.registry import Registry


@dataclass
class Curriculum:
    """Easy samples first: per-query loss weights that anneal to uniform by step ``steps``;
    subclasses give the heuristic h(d) of a document from the mining retriever's ranks and scores."""

    steps: int = 100
    anti: bool = False
    mode: str = "sample"

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError("steps must be >= 1")
        if self.mode not in ("sample", "batch"):
            raise ValueError(f"mode {self.mode!r}: expected sample or batch")

    def heuristic(self, ranks: np.ndarray, scores: np.ndarray, all_scores: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def easiness(self, ex, negatives_used: list[int]) -> float:
        m = ex.mined
        if not m or not negatives_used or "negative_ranks" not in m:
            return 1.0
        pr, ps = np.asarray(m["positive_ranks"]), np.asarray(m["positive_scores"])
        nr, ns = np.asarray(m["negative_ranks"]), np.asarray(m["negative_scores"])
        all_s = np.concatenate([ps, ns])
        hp = self.heuristic(pr, ps, all_s).max()
        hn = self.heuristic(nr[negatives_used], ns[negatives_used], all_s)
        w = float(np.min((hp - hn + 1) / 2)) + 1e-8
        return 1 - w if self.anti else w

    def weights(self, step: int, batch, examples) -> torch.Tensor | None:
        """Per-query loss weights at ``step`` (None once the curriculum has ended)."""
        m = self.steps
        if step >= m:
            return None
        w = torch.tensor(
            [self.easiness(ex, [j for _, j in own]) for ex, own in zip(examples, hard_negatives(batch))],
            dtype=torch.float32,
        )
        frac = step / m
        w = w * (1 - frac) + frac
        if self.mode == "batch":
            w = torch.full_like(w, float(w.mean()))
        return w

    def __str__(self) -> str:
        return CURRICULA.spec_of(self) or type(self).__name__


CURRICULA: Registry[Curriculum] = Registry("curriculum", Curriculum)


@CURRICULA.register("reciprank")
@dataclass
class ReciprankCurriculum(Curriculum):
    """h(d) = 1 / rank(d)."""

    def heuristic(self, ranks, scores, all_scores):
        return 1.0 / np.maximum(ranks, 1)


@CURRICULA.register("normscore")
@dataclass
class NormscoreCurriculum(Curriculum):
    """h(d) = (s(d) - min_q) / (max_q - min_q) over the query's mined scores."""

    def heuristic(self, ranks, scores, all_scores):
        lo, hi = float(all_scores.min()), float(all_scores.max())
        return (scores - lo) / (hi - lo) if hi > lo else np.full(len(scores), 0.5)


@CURRICULA.register("kdescore")
@dataclass
class KdescoreCurriculum(Curriculum):
    """h(d) = CDF at s(d) of a Gaussian KDE fitted to the query's mined scores."""

    def heuristic(self, ranks, scores, all_scores):
        from scipy.stats import gaussian_kde

        if len(all_scores) < 2 or np.ptp(all_scores) == 0:
            return np.full(len(scores), 0.5)
        kde = gaussian_kde(all_scores)
        return np.array([kde.integrate_box_1d(-np.inf, s) for s in scores])

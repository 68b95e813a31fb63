"""Significance of per-query metric differences between systems evaluated on the same queries.

* Paired t-test (Student 1908): t = mean(d) / (sd(d) / sqrt(n)), d = per-query differences,
  two-sided p from the t distribution with n - 1 degrees of freedom (scipy.stats.ttest_rel).
* Fisher's randomization test, paired (Fisher 1935; Smucker, Allan & Carterette, CIKM 2007):
  under H0 each query's pair of scores is exchangeable, so d_i's sign is random. p is the
  share of sign assignments whose |mean| reaches the observed |mean(d)|. All 2^n assignments
  are enumerated when 2^n <= ``permutations``; otherwise ``permutations`` random ones are drawn
  and p = (hits + 1) / (permutations + 1), which is never 0 (Phipson & Smyth 2010).
* Bootstrap confidence interval of a mean (Efron 1979): percentile interval of the mean over
  ``resamples`` resamples of the queries with replacement.
* Two-level bootstrap over queries and training seeds (Davison & Hinkley 1997, sec. 3.8, nested
  data): a system is a [seeds, queries] matrix of per-query values, one row per training seed. A
  resample draws the queries with replacement (the same queries for both systems: they are paired)
  and, independently for each system, its seeds with replacement (seed i of one system has nothing
  to do with seed i of another); the statistic is the mean over the drawn seeds and queries (of a,
  or of a minus b). Interval: the percentiles. p-value: the share of resampled differences whose
  distance from the observed one reaches the observed one, |d* - d| >= |d| (the bootstrap
  distribution shifted to mean 0 stands in for H0; Hall & Wilson 1991). Every resample is
  enumerated when there are at most ``resamples`` of them; otherwise p = (hits + 1) / (B + 1).
* Holm-Bonferroni (Holm 1979) adjusts the p-values of m comparisons against one baseline so the
  family-wise error rate stays at alpha: sorted p_(i) becomes max_{j<=i} min(1, (m - j + 1) p_(j)).

Every random procedure takes a ``seed`` and gives the same answer for the same seed.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

TESTS = ("t", "fisher", "two-level")


def paired_t_test(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of the paired t-test of a - b; 1.0 when every difference is 0."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if len(d) < 2 or not np.any(d != d[0]):
        return 1.0 if len(d) < 2 or d[0] == 0 else 0.0
    return float(stats.ttest_rel(a, b).pvalue)


def randomization_test(a: Sequence[float], b: Sequence[float], *, permutations: int = 10_000, seed: int = 0) -> float:
    """Two-sided p-value of Fisher's paired randomization test of mean(a - b) (module docstring)."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    n = len(d)
    if n == 0:
        return 1.0
    observed = abs(d.mean())
    tol = 1e-12 * max(1.0, observed)  # equal means must count as "at least as extreme"
    if n <= 30 and 2**n <= permutations:
        signs = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)
        return float((np.abs(signs @ d) / n >= observed - tol).mean())
    rng = np.random.default_rng(seed)
    hits, done = 0, 0
    while done < permutations:
        m = min(4096, permutations - done)
        signs = rng.integers(0, 2, size=(m, n), dtype=np.int8) * 2 - 1
        hits += int((np.abs(signs @ d) / n >= observed - tol).sum())
        done += m
    return (hits + 1) / (permutations + 1)


def bootstrap_ci(
    values: Sequence[float], *, alpha: float = 0.05, resamples: int = 10_000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval (1 - alpha) of the mean of ``values``."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for start in range(0, resamples, 1024):
        stop = min(resamples, start + 1024)
        means[start:stop] = v[rng.integers(0, len(v), size=(stop - start, len(v)))].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def _resampled_indices(n: int, sizes: Sequence[int], resamples: int, seed: int):
    """Query indices [B, n] and each system's seed indices [B, s]: every combination when there are at
    most ``resamples`` of them (exact), else ``resamples`` random draws. Returns (blocks, exact)."""
    total = n**n
    for s in sizes:
        total *= s**s
    if total <= resamples:
        grids = [np.array(list(itertools.product(range(k), repeat=k))) for k in (n, *sizes)]
        mesh = np.meshgrid(*[np.arange(len(g)) for g in grids], indexing="ij")
        return [[g[m.ravel()] for g, m in zip(grids, mesh)]], True
    rng = np.random.default_rng(seed)
    blocks = []
    for start in range(0, resamples, 1024):
        m = min(1024, resamples - start)
        blocks.append([rng.integers(0, k, size=(m, k)) for k in (n, *sizes)])
    return blocks, False


def two_level_bootstrap(
    a: np.ndarray, b: np.ndarray | None = None, *, alpha: float = 0.05, resamples: int = 10_000, seed: int = 0
) -> tuple[float, tuple[float, float], float]:
    """Mean of ``a`` ([seeds, queries]), or of ``a - b`` when ``b`` (same queries) is given, with its
    two-level bootstrap interval and p-value (module docstring). Returns (estimate, (lo, hi), p)."""
    mats = [np.atleast_2d(np.asarray(x, dtype=np.float64)) for x in (a, b) if x is not None]
    n = mats[0].shape[1]
    if any(x.shape[1] != n for x in mats) or n == 0:
        raise ValueError(f"systems must share their queries: shapes {[x.shape for x in mats]}")
    signs = [1.0, -1.0][: len(mats)]
    observed = sum(sg * x.mean() for sg, x in zip(signs, mats))
    blocks, exact = _resampled_indices(n, [x.shape[0] for x in mats], resamples, seed)
    stats_ = []
    for q_idx, *seed_idx in blocks:
        per_query = sum(sg * x[s_idx].mean(axis=1) for sg, x, s_idx in zip(signs, mats, seed_idx))  # [B, n]
        stats_.append(np.take_along_axis(per_query, q_idx, axis=1).mean(axis=1))
    boot = np.concatenate(stats_)
    lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    if b is None:
        return float(observed), (float(lo), float(hi)), float("nan")
    tol = 1e-12 * max(1.0, abs(observed))
    hits = np.abs(boot - observed) >= abs(observed) - tol
    p = float(hits.mean()) if exact else (int(hits.sum()) + 1) / (len(boot) + 1)
    return float(observed), (float(lo), float(hi)), p


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = len(p)
    order = np.argsort(p, kind="mergesort")
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out.tolist()


@dataclass
class Comparison:
    """One system against the baseline on one metric."""

    mean: float
    ci: tuple[float, float]
    delta: float
    p: float
    p_adjusted: float
    delta_ci: tuple[float, float] | None = None  # the difference's interval (two-level bootstrap)


def compare_systems(
    baseline: Sequence[float],
    systems: dict[str, Sequence[float]],
    *,
    test: str = "t",
    alpha: float = 0.05,
    resamples: int = 10_000,
    seed: int = 0,
) -> dict[str, Comparison]:
    """Each system vs the baseline (per-query values aligned by position), Holm-corrected over
    the systems when there are more than one."""
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r}; choose one of {TESTS}")
    base = np.asarray(baseline, dtype=np.float64)
    raw = {}
    for name, vals in systems.items():
        v = np.asarray(vals, dtype=np.float64)
        raw[name] = (
            paired_t_test(v, base) if test == "t" else randomization_test(v, base, permutations=resamples, seed=seed)
        )
    adjusted = dict(zip(raw, holm(list(raw.values())))) if len(raw) > 1 else raw
    out = {}
    for name, vals in systems.items():
        v = np.asarray(vals, dtype=np.float64)
        out[name] = Comparison(
            float(v.mean()),
            bootstrap_ci(v, alpha=alpha, resamples=resamples, seed=seed),
            float(v.mean() - base.mean()),
            raw[name],
            adjusted[name],
        )
    return out

"""The two-level bootstrap over queries and training seeds, and ``rw.compare`` with a run per seed."""

import itertools

import numpy as np
import pytest

from rankwise.metrics.compare import compare_runs
from rankwise.metrics.significance import holm, two_level_bootstrap

# two systems, 2 seeds x 2 queries: small enough to enumerate every resample by hand
A = np.array([[0.5, 1.0], [0.7, 0.8]])
C = np.array([[0.6, 0.7], [0.6, 0.7]])


def test_two_level_bootstrap_by_hand():
    """Seed draws of A give per-query differences from C of (-0.1, 0.3) [seeds 0,0], (0.0, 0.2) [0,1 and
    1,0] or (0.1, 0.1) [1,1] (C's draws are all alike); with the 4 query draws the 16 equally likely
    differences are -0.1 (1), 0.0 (2), 0.1 (10), 0.2 (2), 0.3 (1). Observed: 0.75 - 0.65 = 0.10;
    |d* - 0.10| >= 0.10 for -0.1, 0.0, 0.2 and 0.3: p = 6 / 16. The 12.5 % and 87.5 % points: 0.0, 0.2."""
    diff, (lo, hi), p = two_level_bootstrap(A, C, alpha=0.25)
    assert diff == pytest.approx(0.10)
    assert p == pytest.approx(6 / 16)
    assert (lo, hi) == pytest.approx((0.0, 0.2))
    mean, (lo, hi), _ = two_level_bootstrap(A, alpha=0.25)  # one system: its mean 0.75 and interval
    assert mean == pytest.approx(0.75)
    assert lo < 0.75 < hi


def test_two_level_bootstrap_equals_a_naive_enumeration():
    rng = np.random.default_rng(3)
    a, b = rng.random((2, 3)), rng.random((3, 3))  # 3^3 * 2^2 * 3^3 = 2916 resamples, all enumerated
    boot = []
    for q in itertools.product(range(3), repeat=3):
        for sa in itertools.product(range(2), repeat=2):
            for sb in itertools.product(range(3), repeat=3):
                boot.append(np.mean([a[list(sa), j].mean() - b[list(sb), j].mean() for j in q]))
    d = a.mean() - b.mean()
    diff, ci, p = two_level_bootstrap(a, b, resamples=5000)
    assert diff == pytest.approx(d)
    assert ci == pytest.approx(tuple(np.quantile(boot, [0.025, 0.975])))
    assert p == pytest.approx(np.mean(np.abs(np.array(boot) - d) >= abs(d) - 1e-12))


def test_seed_variation_widens_the_interval():
    """Same per-query means, but one system's seeds disagree: the query-only interval is too narrow."""
    rng = np.random.default_rng(0)
    base = rng.random(200)
    steady = np.stack([base] * 5)
    shaky = np.stack([base + s for s in (-0.1, -0.05, 0.0, 0.05, 0.1)])
    _, ci_steady, _ = two_level_bootstrap(steady, resamples=4000)
    _, ci_shaky, _ = two_level_bootstrap(shaky, resamples=4000)
    assert (ci_shaky[1] - ci_shaky[0]) > 1.5 * (ci_steady[1] - ci_steady[0])
    _, _, p = two_level_bootstrap(shaky + 0.03, steady, resamples=4000)
    assert p > 0.05  # 0.03 is within the seeds' spread: not significant
    _, _, p = two_level_bootstrap(steady + 0.03, steady, resamples=4000)
    assert p < 0.01  # the same gain on every seed and query is


def _run(scores: dict[str, float]) -> dict[str, dict[str, float]]:
    return {"q1": scores, "q2": {k: -v for k, v in scores.items()}}


def test_compare_with_seeds_uses_the_two_level_bootstrap_and_holm_over_the_table():
    qrels = {"q1": {"d1": 1}, "q2": {"d2": 1}}
    good = [_run({"d1": 2.0, "d2": 1.0}), _run({"d1": 0.9, "d2": 1.0})]  # seed 0 ranks both right, seed 1 neither
    bad = [_run({"d1": 0.5, "d2": 1.0}), _run({"d1": 0.2, "d2": 1.0})]
    res = compare_runs(qrels, {"bad": bad, "good": good}, baseline="bad", metrics=["mrr", "ndcg@10"])
    assert res.test == "two-level" and res.per_seed["good"]["mrr"].shape == (2, 2)
    rr = np.array([[1.0, 1.0], [0.5, 0.5]]) - np.array([[0.5, 0.5], [0.5, 0.5]])  # good - bad, by hand
    cell = res.cells["good"]["mrr"]
    assert cell.delta == pytest.approx(rr.mean())
    raw = [res.cells["good"][m].p for m in ("mrr", "ndcg@10")]
    assert [res.cells["good"][m].p_adjusted for m in ("mrr", "ndcg@10")] == pytest.approx(holm(raw))
    assert "two-level bootstrap" in res.caption() and "2 seeds" in res.caption()
    with pytest.raises(ValueError, match="two-level"):
        compare_runs(qrels, {"bad": bad, "good": good}, baseline="bad", test="t")


def test_compare_with_one_seed_each_matches_the_paired_table():
    qrels = {"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d1": 1}}
    a = {q: {"d1": 1.0, "d2": 0.5} for q in qrels}
    b = {q: {"d1": 0.2, "d2": 0.5} for q in qrels}
    one = compare_runs(qrels, {"a": a, "b": b}, baseline="a")
    listed = compare_runs(qrels, {"a": [a], "b": [b]}, baseline="a")
    assert one.test == listed.test == "t"
    assert one.cells["b"]["ndcg@10"].p == listed.cells["b"]["ndcg@10"].p

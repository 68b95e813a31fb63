import itertools

import numpy as np
import pytest
from scipy import stats

from rankwise.metrics.significance import bootstrap_ci, compare_systems, holm, paired_t_test, randomization_test


def test_t_test_matches_the_formula():
    a, b = np.array([0.5, 0.7, 0.2, 0.9, 0.4]), np.array([0.4, 0.5, 0.3, 0.6, 0.35])
    d = a - b
    t = d.mean() / (d.std(ddof=1) / np.sqrt(len(d)))
    assert paired_t_test(a, b) == pytest.approx(2 * stats.t.sf(abs(t), len(d) - 1))
    assert paired_t_test(a, a) == 1.0


def test_randomization_exact_enumeration_by_hand():
    d = np.array([0.3, 0.1, -0.05, 0.2, 0.15, 0.05])
    obs = abs(d.mean())
    hits = sum(abs(np.dot(s, d)) / len(d) >= obs - 1e-12 for s in itertools.product([1, -1], repeat=len(d)))
    assert randomization_test(d, np.zeros_like(d)) == pytest.approx(hits / 2 ** len(d))


def test_randomization_sampled_is_seeded_and_close_to_t_test_on_normal_data():
    rng = np.random.default_rng(0)
    a = rng.normal(0.5, 0.2, 200)
    b = a - rng.normal(0.03, 0.2, 200)
    p1 = randomization_test(a, b, permutations=20_000, seed=1)
    assert p1 == randomization_test(a, b, permutations=20_000, seed=1)
    assert p1 == pytest.approx(paired_t_test(a, b), abs=0.02)
    assert randomization_test(a + 1, a, permutations=1000) == pytest.approx(1 / 1001)  # never exactly 0


def test_bootstrap_ci_covers_the_mean_at_the_nominal_rate():
    rng = np.random.default_rng(4)
    covered = 0
    for trial in range(200):
        v = rng.exponential(1.0, 60)
        lo, hi = bootstrap_ci(v, resamples=2000, seed=trial)
        covered += lo <= 1.0 <= hi
    assert 0.88 <= covered / 200 <= 0.99  # percentile intervals under-cover a little on skewed data
    assert bootstrap_ci([0.3] * 10) == (pytest.approx(0.3), pytest.approx(0.3))


def test_holm_by_hand():
    # sorted 0.01, 0.02, 0.04 -> 3*0.01, max(0.03, 2*0.02), max(0.04, 1*0.04)
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])


def test_compare_systems_corrects_only_with_several_systems():
    rng = np.random.default_rng(5)
    base = rng.random(50)
    one = compare_systems(base, {"x": base + 0.05 + rng.normal(0, 0.1, 50)})
    assert one["x"].p == one["x"].p_adjusted and one["x"].delta == pytest.approx(one["x"].mean - base.mean())
    many = compare_systems(base, {"x": base + 0.05, "y": base + rng.normal(0, 0.1, 50)}, test="fisher", resamples=2000)
    assert many["y"].p_adjusted >= many["y"].p
    with pytest.raises(ValueError):
        compare_systems(base, {"x": base}, test="wilcoxon")

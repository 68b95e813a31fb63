import numpy as np
import pytest
from scipy import stats

from rankwise.metrics.auc import auc, pooled_scores, roc_curve
from rankwise.metrics.calibration import calibration, ece, platt
from rankwise.metrics.correlation import label_correlation, teacher_correlation
from rankwise.metrics.threshold import opis, utility_curves

sklearn_metrics = pytest.importorskip("sklearn.metrics")


def test_roc_curve_matches_sklearn_and_its_area_is_auc():
    rng = np.random.default_rng(0)
    pos, neg = rng.integers(0, 8, 40) / 4, rng.integers(0, 6, 70) / 4  # many ties
    fpr, tpr, thr = roc_curve(pos, neg)
    y = np.r_[np.ones(40), np.zeros(70)]
    ref_fpr, ref_tpr, _ = sklearn_metrics.roc_curve(y, np.r_[pos, neg], drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr)
    np.testing.assert_allclose(tpr, ref_tpr)
    assert np.trapezoid(tpr, fpr) == pytest.approx(auc(pos, neg), abs=1e-12)
    assert np.all(np.diff(thr) < 0) and thr[0] == np.inf


def test_pooled_scores_split_by_label_and_ignore_unretrieved():
    pos, neg = pooled_scores({"a": {"x": 1, "y": 0, "z": 2}}, {"a": {"x": 0.5, "y": 0.4, "u": 0.1}})
    assert sorted(pos) == [0.5] and sorted(neg) == [0.1, 0.4]


def test_opis_is_zero_for_identical_queries_and_grows_with_offsets():
    rng = np.random.default_rng(1)
    base_pos, base_neg = rng.normal(2, 1, 20), rng.normal(0, 1, 200)
    qrels = {f"q{i}": {f"p{j}": 1 for j in range(20)} for i in range(5)}
    same = {
        q: {**{f"p{j}": base_pos[j] for j in range(20)}, **{f"n{j}": base_neg[j] for j in range(200)}} for q in qrels
    }
    assert opis(qrels, same) == pytest.approx(0.0, abs=1e-15)
    # shifting one query's scores keeps its own AUC but breaks the shared threshold
    shifted = {q: {d: s + (3.0 if q == "q0" else 0.0) for d, s in r.items()} for q, r in same.items()}
    assert opis(qrels, shifted) > 0.01
    # invariance: one affine map applied to every score moves the threshold range with it
    scaled = {q: {d: 2 * s - 1 for d, s in r.items()} for q, r in shifted.items()}
    assert opis(qrels, scaled) == pytest.approx(opis(qrels, shifted), rel=1e-9)


def test_utility_curve_by_hand():
    u = utility_curves([np.array([0.9, 0.1])], [np.array([0.5, 0.2, 0.0, 0.8])], np.array([0.15, 0.6]))
    # t=0.15: TPR 1/2, TNR 1/4 -> 2*(1/8)/(3/4) = 1/3 ; t=0.6: TPR 1/2, TNR 3/4 -> 0.6
    np.testing.assert_allclose(u, [[1 / 3, 0.6]])


def test_ece_by_hand_and_platt_matches_logistic_regression():
    # bins of width 0.5: {0.2, 0.4} with labels {0, 1} -> |0.5 - 0.3|; {0.9} with 1 -> 0.1
    assert ece(np.array([0.2, 0.4, 0.9]), np.array([0, 1, 1]), bins=2) == pytest.approx((2 * 0.2 + 1 * 0.1) / 3)
    rng = np.random.default_rng(2)
    s = rng.normal(size=500)
    y = (rng.random(500) < 1 / (1 + np.exp(-(3 * s - 1)))).astype(float)
    a, b = platt(s, y)
    lm = pytest.importorskip("sklearn.linear_model")
    ref = lm.LogisticRegression(C=1e9, tol=1e-10, max_iter=1000).fit(s[:, None], y)
    assert a == pytest.approx(ref.coef_[0, 0], rel=1e-3) and b == pytest.approx(ref.intercept_[0], abs=1e-3)


def test_calibration_after_platt_beats_raw_sigmoid_on_scaled_scores():
    rng = np.random.default_rng(3)
    pos, neg = rng.normal(0.6, 0.05, 300), rng.normal(0.3, 0.05, 3000)  # cosine-like: sigmoid(s) ~ 0.6 for all
    cal = calibration(pos, neg)
    assert cal.ece_platt < 0.05 < cal.ece_raw
    assert sum(b["count"] for b in cal.bins) == 3300


def test_label_and_teacher_correlation_match_scipy():
    qrels = {"a": {"x": 2, "y": 1, "z": 0, "w": 1}, "b": {"x": 1}}
    run = {"a": {"x": 0.9, "y": 0.2, "z": 0.4, "w": 0.3, "u": 1.0}, "b": {"x": 1.0, "y": 0.0}}
    got = label_correlation(qrels, run)
    s, g = [0.9, 0.2, 0.4, 0.3], [2, 1, 0, 1]
    assert got.n_queries == 1  # b has one judged retrieved document
    assert got.kendall_tau == pytest.approx(stats.kendalltau(s, g).statistic)
    assert got.spearman_rho == pytest.approx(stats.spearmanr(s, g).statistic)
    t = teacher_correlation(run, {"a": {"x": 3.0, "y": 2.0, "z": 1.0}})
    assert t.n_queries == 1 and t.kendall_tau == pytest.approx(stats.kendalltau([0.9, 0.2, 0.4], [3, 2, 1]).statistic)

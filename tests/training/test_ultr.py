"""Click models, click logs, inverse propensity weighting, regression EM and DLA."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rankwise.data.clicks import CascadeModel, PositionBasedModel, click_model, displayed_lists, simulate_clicks
from rankwise.data.letor import LetorData
from rankwise.errors import ConfigError, DataError
from rankwise.models.feature_scorer import MLPScorer
from rankwise.training import TrainConfig, train
from rankwise.training.ultr import DLAModel, estimate_propensities_em, ipw_examples


def letor(n_queries=60, per=10, seed=0) -> LetorData:
    rng = np.random.default_rng(seed)
    x = rng.random((n_queries * per, 4)).astype(np.float32)
    labels = np.digitize(x[:, 0] + 0.3 * x[:, 1], [0.5, 0.9, 1.1]).astype(np.float32)
    positions = np.tile(np.arange(1, per + 1), n_queries)
    offsets = np.arange(0, n_queries * per + 1, per)
    return LetorData(
        x, labels, [f"q{i}" for i in range(n_queries)], offsets, [str(i) for i in range(len(x))], positions
    )


def test_click_probabilities_follow_the_published_tables():
    pbm = PositionBasedModel()
    np.testing.assert_allclose(pbm.click_probability(np.arange(5)), [0.1, 0.16, 0.28, 0.52, 1.0], atol=1e-9)
    np.testing.assert_allclose(pbm.examination(12)[[0, 9, 11]], [0.68, 0.06, 0.06])
    assert click_model("pbm:eta=2.0").examination(2)[1] == pytest.approx(0.61**2)
    with pytest.raises(ConfigError):
        click_model("pbm:nope=1")


def test_simulated_click_rates_match_the_model():
    data = letor(400)
    shown = displayed_lists(data, use_positions=True)
    log = simulate_clicks(data, shown, "pbm", sessions=20, seed=1)
    again = simulate_clicks(data, shown, "pbm", sessions=20, seed=1)
    np.testing.assert_array_equal(log.clicks, again.clicks)  # seeded
    grades = data.labels[shown]
    expected = (PositionBasedModel().examination(10) * PositionBasedModel().click_probability(grades)).mean(0)
    np.testing.assert_allclose(log.ctr(), expected, atol=0.01)


def test_cascade_never_clicks_below_a_stop():
    data = letor(50)
    log = simulate_clicks(
        data, displayed_lists(data, use_positions=True), CascadeModel(stop=1.0, p_min=0.5), sessions=5
    )
    assert (log.clicks.sum(1) <= 1).all() and log.clicks.sum() > 0  # stop=1: at most the first click


def test_displayed_lists_and_position_checks():
    data = letor(3)
    scores = -np.arange(len(data.labels), dtype=np.float64)
    np.testing.assert_array_equal(displayed_lists(data, scores=scores, top_k=3)[1], [10, 11, 12])
    data.positions[1] = 1
    with pytest.raises(DataError, match="two rows logged at one position"):
        displayed_lists(data, use_positions=True)


def test_ipw_weights_clicks_by_inverse_relative_propensity():
    data = letor(5)
    log = simulate_clicks(data, displayed_lists(data, use_positions=True), "pbm:p_min=1.0", sessions=3, seed=0)
    p = PositionBasedModel().examination(10)
    for raw, weighted in zip(ipw_examples(log, data), ipw_examples(log, data, p)):
        np.testing.assert_allclose(weighted.labels, raw.labels * p[0] / p[raw.ranks], rtol=1e-6)
    capped = ipw_examples(log, data, p, clip=2.0)
    assert max(ex.labels.max() for ex in capped) <= 2.0


@pytest.fixture(scope="module")
def pbm_log():
    data = letor(300)
    return data, simulate_clicks(data, displayed_lists(data, use_positions=True), "pbm", sessions=30, seed=0)


def test_regression_em_recovers_the_examination_curve(pbm_log):
    data, log = pbm_log
    est = estimate_propensities_em(log, data, iterations=30, steps=20)
    true = log.true_examination / log.true_examination[0]
    assert est[0] == 1.0 and np.corrcoef(est, true)[0, 1] > 0.95


def test_dla_learns_propensities_and_a_ranker(pbm_log):
    data, log = pbm_log
    torch.manual_seed(0)
    model = DLAModel(MLPScorer(4, hidden=(16,)), 10)
    before = model.propensities()
    np.testing.assert_allclose(before, 1.0)  # uniform at the start
    res = train(
        model,
        log.examples(data),
        TrainConfig(loss="softmax:normalize=false", steps=150, batch_size=64, lr=3e-3),
        log=lambda _: None,
    )
    assert all(np.isfinite(h.loss) for h in res.history) and "exam_loss" in res.history[-1].extra
    true = log.true_examination / log.true_examination[0]
    assert np.corrcoef(model.propensities(), true)[0, 1] > 0.9
    scores = model.predict(data.features)
    assert np.corrcoef(scores, data.labels)[0, 1] > 0.5  # the ranker learned relevance, not position

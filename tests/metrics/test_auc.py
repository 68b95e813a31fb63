import numpy as np
import pytest

from rankwise.metrics.auc import auc, global_auc, per_query_auc


def test_auc_by_hand_and_against_pair_counting():
    assert auc([3, 2], [1, 0]) == 1.0
    assert auc([0], [1]) == 0.0
    assert auc([1, 1], [1]) == 0.5  # ties count half
    rng = np.random.default_rng(0)
    pos, neg = rng.integers(0, 5, 30).astype(float), rng.integers(0, 5, 40).astype(float)
    pairs = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert auc(pos, neg) == pytest.approx(pairs, abs=1e-12)


def test_per_query_and_global():
    qrels = {"a": {"d1": 1}, "b": {"d2": 1}, "c": {"d9": 1}}
    run = {"a": {"d1": 0.9, "x": 0.1}, "b": {"d2": 0.3, "y": 0.5}, "c": {"z": 0.2}}
    assert per_query_auc(qrels, run) == {"a": 1.0, "b": 0.0}  # c has no retrieved positive
    # pooled: positives 0.9, 0.3 vs negatives 0.1, 0.5, 0.2 -> 5 of 6 pairs ordered
    assert global_auc(qrels, run) == pytest.approx(5 / 6)

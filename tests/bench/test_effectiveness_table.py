"""The effectiveness study's table, from run records made by hand."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.effectiveness import table


def _record(dense: list[float], hybrid: list[float]) -> dict:
    qids = [f"q{i}" for i in range(len(dense))]
    return {"per_query": dict(zip(qids, dense)), "hybrid": {"per_query": dict(zip(qids, hybrid))}}


def test_means_per_query_values_and_the_exploratory_split_by_hand():
    rng = np.random.default_rng(0)
    peer = [_record(*rng.uniform(0, 1, (2, 6)).tolist()) for _ in range(3)]
    ours = [_record(*rng.uniform(0, 1, (2, 6)).tolist()) for _ in range(3)]
    got = table({"peer": ("lr=1e-4", peer), "rankwise": ("lr=2e-4", ours)}, seen={"q0", "q3"})
    assert got["queries"] == 6
    dense = np.array([list(r["per_query"].values()) for r in ours])
    system = got["systems"]["rankwise-dense"]
    assert system["ndcg@10"] == pytest.approx(dense.mean())
    assert system["per_seed"] == pytest.approx(dense.mean(axis=1).tolist())
    assert system["per_query"]["q4"] == pytest.approx(dense[:, 4].tolist())
    assert system["choice"] == "lr=2e-4" and got["systems"]["peer"]["choice"] == "lr=1e-4"
    hybrid = np.array([list(r["hybrid"]["per_query"].values()) for r in peer])
    assert got["systems"]["peer-hybrid"]["ndcg@10"] == pytest.approx(hybrid.mean())
    first = got["comparisons"][0]
    peer_dense = np.array([list(r["per_query"].values()) for r in peer])
    assert (first["a"], first["b"]) == ("rankwise-dense", "peer")
    assert first["diff"] == pytest.approx(dense.mean() - peer_dense.mean())
    assert all(c["p_holm"] >= c["p_seed_aware"] for c in got["comparisons"])
    seen, unseen = got["exploratory_split"]["positive_seen_in_training"], got["exploratory_split"]["positive_unseen"]
    assert (seen["queries"], unseen["queries"]) == (2, 4)
    assert seen["ndcg@10"]["rankwise-dense"] == pytest.approx(dense[:, [0, 3]].mean())
    assert unseen["diff"]["rankwise-dense - peer"] == pytest.approx(
        dense[:, [1, 2, 4, 5]].mean() - peer_dense[:, [1, 2, 4, 5]].mean()
    )


def test_only_queries_every_run_scored_enter_the_table():
    a = _record([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
    b = _record([0.1, 0.2], [0.3, 0.4])
    got = table({"peer": ("x", [a, a]), "rankwise": ("y", [b, b])}, seen=set())
    assert got["queries"] == 2 and got["exploratory_split"]["positive_seen_in_training"]["queries"] == 0
    assert got["exploratory_split"]["positive_seen_in_training"]["ndcg@10"]["peer"] is None

"""The validation search that widens a grid until its best point is inside what it tried."""

from __future__ import annotations

import pytest

from benchmarks._tuning import widen

LADDERS = {"lr": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2], "dropout": [0.0, 0.1, 0.3, 0.5]}


def _bowl(best_lr: float, best_dropout: float):
    calls = []

    def score(p):
        calls.append(p)
        i, j = LADDERS["lr"].index(p["lr"]), LADDERS["dropout"].index(p["dropout"])
        bi, bj = LADDERS["lr"].index(best_lr), LADDERS["dropout"].index(best_dropout)
        return -((i - bi) ** 2) - (j - bj) ** 2

    return score, calls


def test_a_grid_whose_best_is_on_its_edge_is_widened_to_the_optimum_beyond_it():
    score, calls = _bowl(1e-2, 0.1)
    got = widen(LADDERS, {"lr": [1e-3, 3e-3], "dropout": [0.1, 0.3]}, score)
    assert got.params == {"lr": 1e-2, "dropout": 0.1} and got.score == 0
    assert got.at_ladder_end == []
    tried = [p for p, _ in got.tried]
    # every neighbour of the chosen point was scored, each point once
    for nb in (
        {"lr": 3e-3, "dropout": 0.1},
        {"lr": 3e-2, "dropout": 0.1},
        {"lr": 1e-2, "dropout": 0.0},
        {"lr": 1e-2, "dropout": 0.3},
    ):
        assert nb in tried
    assert len(calls) == len({tuple(p.values()) for p in calls})
    assert tried[:4] == [{"lr": a, "dropout": b} for a in (1e-3, 3e-3) for b in (0.1, 0.3)]


def test_an_optimum_at_the_end_of_a_ladder_is_reported():
    score, _ = _bowl(3e-2, 0.0)
    got = widen(LADDERS, {"lr": [1e-3, 3e-3], "dropout": [0.1, 0.3]}, score)
    assert got.params == {"lr": 3e-2, "dropout": 0.0}
    assert sorted(got.at_ladder_end) == ["dropout", "lr"]


def test_an_interior_grid_optimum_needs_only_its_neighbours():
    score, calls = _bowl(1e-3, 0.1)
    got = widen(LADDERS, {"lr": [3e-4, 1e-3, 3e-3], "dropout": [0.0, 0.1, 0.3]}, score)
    assert got.params == {"lr": 1e-3, "dropout": 0.1} and len(calls) == 9  # nothing beyond the grid


def test_start_values_off_the_ladder_are_refused():
    with pytest.raises(ValueError, match="not on its ladder"):
        widen(LADDERS, {"lr": [2e-3], "dropout": [0.1]}, lambda p: 0.0)

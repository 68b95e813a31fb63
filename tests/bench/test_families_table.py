import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.families import OUT
from benchmarks.families_table import differences, markdown, per_query
from rankwise.metrics.significance import two_level_bootstrap

REPO = Path(__file__).resolve().parents[2]


def test_the_readme_families_rows_are_rendered_from_families_json():
    result = json.loads(OUT.read_text())
    readme = set((REPO / "benchmarks" / "README.md").read_text(encoding="utf-8").splitlines())
    for name in result["datasets"]:
        rows = markdown(result, name).splitlines()
        assert all(r in readme for r in rows), [r for r in rows if r not in readme]
    assert result["commit"] and result["versions"]["sentence-transformers"]


def _side(values: list[list[float]]) -> dict:
    return {"per_query": [{"ndcg@10": {f"q{i}": v for i, v in enumerate(row)}} for row in values]}


def test_differences_are_the_two_level_bootstrap_in_points_with_holm_over_the_families():
    rng = np.random.default_rng(0)
    a, b = rng.random((2, 6)), rng.random((3, 6))
    cells = {
        "bm25": {"ndcg@10": 0.5},
        "sparse": {"rankwise": _side(a.tolist()), "peer": _side(b.tolist())},
        "multi-vector": {"rankwise": _side(b.tolist()), "peer": _side(b.tolist())},
    }
    got = differences(cells)
    diff, (lo, hi), p = two_level_bootstrap(a, b)
    d, ci, p_raw, _ = got["sparse"]
    assert (d, *ci, p_raw) == pytest.approx((100 * diff, 100 * lo, 100 * hi, p))
    assert got["multi-vector"][0] == 0 and got["multi-vector"][2] == 1.0  # a system against itself
    assert got["sparse"][3] == pytest.approx(min(1.0, 2 * p))  # Holm: the smaller p doubled
    assert per_query(cells["sparse"]["rankwise"]).tolist() == a.tolist()


def test_the_readme_wordpiece_bm25_figures_are_the_results_file():
    from benchmarks.wordpiece_bm25 import OUT as WORDPIECE

    result = json.loads(WORDPIECE.read_text())
    bm25, binary = (result["ndcg@10"]["wordpieces"][w] for w in ("bm25", "binary"))
    readme = " ".join((REPO / "benchmarks" / "README.md").read_text(encoding="utf-8").split())
    assert (
        f"scores {bm25['128']:.3f} on SciFact test with documents cut at 128 tokens, {bm25['256']:.3f} at 256 "
        f"and {bm25['512']:.3f} at 512" in readme
    )
    assert f"{binary['128']:.3f} at 128 and {binary['512']:.3f} at 512" in readme
    assert bm25["128"] < result["ndcg@10"]["words"] < bm25["512"]  # cut documents cost more than word pieces do

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.adapt import OUT, markdown
from rankwise.metrics.significance import two_level_bootstrap

REPO = Path(__file__).resolve().parents[2]


def test_the_readme_adaptation_rows_are_rendered_from_adapt_json():
    result = json.loads(OUT.read_text())
    readme = set((REPO / "benchmarks" / "README.md").read_text(encoding="utf-8").splitlines())
    rows = markdown(result).split("\n\n", 1)[1].splitlines()  # the table, without the choice line
    assert all(r in readme for r in rows), [r for r in rows if r not in readme]


def test_adapt_json_has_the_issues_structure_and_its_figures_recompute_from_per_query_values():
    result = json.loads(OUT.read_text())
    assert result["commit"] and result["versions"]["sentence-transformers"] and result["machine"]["cores"]
    for d in result["datasets"].values():
        pq = d["per_query"]
        adapted, start = np.array(pq["adapted"]), np.array([pq["zero_shot"]])
        assert d["zero_shot"]["ndcg@10"] == pytest.approx(start.mean())
        assert d["adapted"]["seeds"] == pytest.approx(adapted.mean(axis=1).tolist())
        assert d["adapted"]["ndcg@10"] == pytest.approx(np.mean(d["adapted"]["seeds"]))
        diff, ci, p = two_level_bootstrap(adapted, start)
        assert (diff, *ci, p) == pytest.approx((d["diff"], *d["diff_ci"], d["p_seed_aware"]))

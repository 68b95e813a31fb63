"""benchmarks/README's frontier tables are the results file's, row for row."""

from __future__ import annotations

import json

import pytest

from benchmarks.frontier import OUT, markdown
from benchmarks.settings import REPO


def test_the_readme_frontier_rows_are_rendered_from_frontier_json():
    rows = [
        line
        for line in markdown(json.loads(OUT.read_text())).splitlines()
        if line.startswith("| ") and "|---" not in line
    ]
    readme = set((REPO / "benchmarks" / "README.md").read_text(encoding="utf-8").splitlines())
    cells = [r for r in rows if not r.startswith("| model ")]
    assert len(cells) >= 16 and all(r in readme for r in rows), [r for r in rows if r not in readme][:3]


def _run(rng, shift: float) -> dict:
    """One seed's record: every cell's nDCG@10 per query, shifted from the full size's."""
    from benchmarks.frontier import DIMS, PRECISIONS

    base = rng.uniform(0.2, 0.8, size=40)
    per_query, cells = {}, {}
    for d in DIMS:
        for p in PRECISIONS:
            drop = 0.0 if (d, p) == (max(DIMS), "fp32") else shift * (max(DIMS) / d)
            per_query[f"{d}/{p}"] = {f"q{i}": float(v - drop) for i, v in enumerate(base)}
            cells.setdefault(str(d), {})[p] = {"index_bytes": d * 10}
    return {"per_query": per_query, "cells": cells}


def test_cells_over_seeds_and_the_bar_by_hand():
    import numpy as np

    from benchmarks.frontier import bar, holm_table, summarise

    rng = np.random.default_rng(0)
    plain, matryoshka = [_run(rng, 0.01) for _ in range(3)], [_run(rng, 0.002) for _ in range(3)]
    cells = {"plain": summarise(plain), "matryoshka": summarise(matryoshka)}
    holm_table(cells)
    full = cells["plain"]["384"]["fp32"]
    want = np.mean([np.mean(list(r["per_query"]["384/fp32"].values())) for r in plain])
    assert full["ndcg@10"] == pytest.approx(want) and full["p"] == 1.0 and "p_holm" not in full
    small = cells["plain"]["64"]["binary"]
    assert small["ndcg@10"] == pytest.approx(want - 0.06) and small["p"] < 0.01
    assert small["p_holm"] >= small["p"] and len(small["seeds"]) == 3 and small["index_bytes"] == 640
    b = bar({"plain": plain, "matryoshka": matryoshka})
    m128 = np.mean([np.mean(list(r["per_query"]["128/fp32"].values())) for r in matryoshka])
    assert b["points"] == pytest.approx(100 * (m128 - want)) and b["ci_points"][0] <= b["points"] <= b["ci_points"][1]


def test_the_readme_binary_codes_rows_are_rendered_from_binary_codes_json():
    from benchmarks.binary_codes import OUT as CODES
    from benchmarks.binary_codes import markdown as codes_markdown

    result = json.loads(CODES.read_text())
    readme = set((REPO / "benchmarks" / "README.md").read_text(encoding="utf-8").splitlines())
    rows = codes_markdown(result).splitlines()
    assert len(rows) == 6 and all(r in readme for r in rows), [r for r in rows if r not in readme]
    assert result["commit"] and result["versions"]["faiss-cpu"]

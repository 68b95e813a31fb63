"""benchmarks/README's frontier tables are the results file's, row for row."""

from __future__ import annotations

import json

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

"""``rankwise compare`` with a run per training seed: NAME=RUN,RUN,... is one system."""

import json

import numpy as np
import pytest

from rankwise.data import write_run
from rankwise.jobs.compare import compare
from rankwise.metrics.significance import two_level_bootstrap
from tests.conftest import run_cli


def _fixture(tmp_path):
    rng = np.random.default_rng(0)
    qrels = {f"q{i}": {f"d{i}": 1} for i in range(30)}
    (tmp_path / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(30)))
    paths = {}
    for system, skill in (("base", 0.0), ("new", 0.8)):
        for s in range(3):
            run = {q: {f"d{j}": float(rng.normal() + skill * (q == f"q{j}")) for j in range(30)} for q in qrels}
            paths[system, s] = tmp_path / f"{system}-{s}.trec"
            write_run(paths[system, s], run, tag=system)
    return qrels, paths


def test_compare_systems_with_seeds(tmp_path, monkeypatch, capsys):
    qrels, paths = _fixture(tmp_path)
    spec = [f"{name}=" + ",".join(str(paths[name, s]) for s in range(3)) for name in ("base", "new")]
    job = compare(spec, qrels=tmp_path / "qrels.tsv", metrics=["ndcg@10"], resamples=2000)
    res = job.comparison
    assert res.test == "two-level" and res.baseline == "base" and list(res.cells) == ["base", "new"]
    a, b = res.per_seed["new"]["ndcg@10"], res.per_seed["base"]["ndcg@10"]
    assert a.shape == (3, 30)
    diff, ci, p = two_level_bootstrap(a, b, resamples=2000)
    cell = res.cells["new"]["ndcg@10"]
    assert (cell.delta, cell.delta_ci, cell.p) == (pytest.approx(diff), pytest.approx(ci), pytest.approx(p))
    code, text = run_cli(
        monkeypatch, capsys, "compare", *spec, "--qrels", tmp_path / "qrels.tsv", "--metrics", "ndcg@10",
        "--resamples", "2000", "--out", tmp_path / "cmp.md",
    )  # fmt: skip
    assert code == 0, text
    assert "two-level bootstrap" in text and "3 seeds" in text
    saved = json.loads((tmp_path / "cmp.json").read_text())
    assert saved["test"] == "two-level" and saved["runs"]["new"]["ndcg@10"]["p"] == pytest.approx(p)
    code, text = run_cli(monkeypatch, capsys, "compare", *spec, "--qrels", tmp_path / "qrels.tsv", "--test", "t")
    assert code != 0 and "two-level" in text

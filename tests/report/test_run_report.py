"""`rankwise report` and `rankwise compare` on hand-made runs; the HTML is opened in headless Chromium."""

import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from rankwise.data import write_run
from rankwise.metrics import evaluate_per_query
from rankwise.metrics.significance import paired_t_test
from tests.conftest import run_cli, write_beir

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture()
def run_folder(tmp_path):
    """A BEIR folder with 30 queries and a run folder over it, as `rankwise train --eval-split` leaves it."""
    rng = np.random.default_rng(0)
    docs = [{"_id": f"d{i}", "text": f"document number {i} about topic {i % 7}"} for i in range(200)]
    queries = [{"_id": f"q{i}", "text": f"question {i} on topic {i % 7}"} for i in range(30)]
    qrels = [
        (f"q{i}", f"d{j}", int(g))
        for i in range(30)
        for j, g in zip(rng.choice(200, 6, replace=False), rng.integers(0, 3, 6))
    ]
    data = write_beir(tmp_path / "data", docs, queries, {"test": qrels})
    judged = {}
    for q, d, g in qrels:
        judged.setdefault(q, {})[d] = g

    def make_run(skill):  # scores lean towards the grades by `skill`
        return {
            f"q{i}": {f"d{j}": float(rng.normal() + skill * judged[f"q{i}"].get(f"d{j}", 0)) for j in range(200)}
            for i in range(30)
        }

    out = tmp_path / "run"
    out.mkdir()
    write_run(out / "run.trec", make_run(1.5))
    write_run(out / "run-before.trec", make_run(0.3))
    (out / "config.toml").write_text(
        f'[run]\ncommand = "train"\ndata = "{data}"\nsplit = "train"\neval_split = "test"\n'
    )
    (out / "eval_history.json").write_text(
        json.dumps([{"step": s, "metrics": {"ndcg@10": 0.3 + s / 100}} for s in (0, 10, 20)])
    )
    return out, data, judged


def test_report_writes_every_section(monkeypatch, capsys, run_folder):
    out, _, _ = run_folder
    code, text = run_cli(monkeypatch, capsys, "report", out, "--worst", 3)
    assert code == 0, text
    md = (out / "report.md").read_text()
    for section in ("## Metrics", "## Score quality", "## Figures", "## The 3 worst queries by nDCG@10"):
        assert section in md
    for png in ("roc.png", "score_histograms.png", "metrics_over_steps.png", "per_query_ndcg10.png"):
        assert f"]({png})" in md and (out / png).read_bytes()[:4] == b"\x89PNG"
    assert "question " in md and "document number" in md  # texts of the worst queries and their results
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 4 and 'src="roc.png"' not in page


def test_report_html_renders_in_headless_chromium(monkeypatch, capsys, run_folder, tmp_path):
    """Every figure of report.html decodes in a real browser (the page's own check counts them)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("RANKWISE_REQUIRE_CHROMIUM"):
            pytest.fail("chromium is not installed (Debian package chromium); .ci/run installs it")
        pytest.skip("chromium is not installed (Debian package chromium)")
    out, _, _ = run_folder
    assert run_cli(monkeypatch, capsys, "report", out)[0] == 0
    dom = subprocess.run(
        [
            browser,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            (out / "report.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    found = re.search(r'data-figures-rendered="(\d+)/(\d+)"', dom)
    assert found, dom[:500]
    assert found.group(1) == found.group(2) == "4"
    assert dom.count('data-rendered="yes"') == 4 and 'data-rendered="no"' not in dom


def test_compare_prints_intervals_and_significance(monkeypatch, capsys, run_folder, tmp_path):
    out, data, judged = run_folder
    code, text = run_cli(
        monkeypatch,
        capsys,
        "compare",
        out / "run-before.trec",
        out,
        "--data",
        data,
        "--metrics",
        "ndcg@10,map",
        "--out",
        tmp_path / "cmp.md",
    )
    assert code == 0, text
    assert "run-before (baseline)" in text and "Δ vs run-before" in text
    saved = json.loads((tmp_path / "cmp.json").read_text())
    from rankwise.data import read_run

    a = evaluate_per_query(judged, read_run(out / "run.trec"), ["ndcg@10"])["ndcg@10"]
    b = evaluate_per_query(judged, read_run(out / "run-before.trec"), ["ndcg@10"])["ndcg@10"]
    cell = saved["runs"]["run"]["ndcg@10"]
    assert cell["p"] == pytest.approx(paired_t_test([a[q] for q in judged], [b[q] for q in judged]))
    assert cell["delta"] == pytest.approx(np.mean(list(a.values())) - np.mean(list(b.values())))
    assert cell["ci"][0] <= cell["mean"] <= cell["ci"][1]
    assert "▲" in (tmp_path / "cmp.md").read_text()  # the better run is significantly better here


def test_compare_bad_inputs_name_file_and_line(monkeypatch, capsys, caplog, run_folder, tmp_path):
    out, data, _ = run_folder
    bad = tmp_path / "bad.trec"
    bad.write_text((out / "run.trec").read_text() + "q999 Q0 d1 1 0.5 x\n")
    code, text = run_cli(monkeypatch, capsys, "compare", bad, out, "--data", data)
    n_lines = len((out / "run.trec").read_text().splitlines())
    assert code == 2 and f"bad.trec:{n_lines + 1}, field 'qid': query 'q999' is not in the qrels" in text
    code, text = run_cli(monkeypatch, capsys, "compare", bad, out, "--data", data, "--lenient")
    assert code == 0 and "bad.trec: dropped 1 queries that the qrels do not judge" in caplog.text
    dup = tmp_path / "dup.trec"
    dup.write_text("q0 Q0 d1 1 0.5 x\nq0 Q0 d1 2 0.4 x\n")
    code, text = run_cli(monkeypatch, capsys, "compare", dup, out, "--data", data)
    assert code == 2 and "dup.trec:2, field 'docid'" in text
    nan = tmp_path / "nan.trec"
    nan.write_text("q0 Q0 d1 1 nan x\n")
    code, text = run_cli(monkeypatch, capsys, "compare", nan, "--data", data)
    assert code == 2 and "nan.trec:1, field 'score'" in text
    qrels = tmp_path / "q.tsv"
    qrels.write_text("q0\td1\t1\nq0\td2\n")
    code, text = run_cli(monkeypatch, capsys, "compare", out, "--qrels", qrels)
    assert code == 2 and "q.tsv:2" in text
    code, text = run_cli(monkeypatch, capsys, "compare", out, "--data", data, "--metrics", "ndcg@10,bogus")
    assert code == 2 and "unknown metric 'bogus'" in text

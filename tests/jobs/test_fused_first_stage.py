"""Fusion where a first stage is used: ``rankwise eval --retriever bm25+dense --fusion ...`` and
``rw.Pipeline([...])``; the fused run equals fusing the parts' own runs."""

import json

import pytest

import rankwise as rw
from rankwise.data import load_beir, read_run
from rankwise.index.fusion import Fusion
from tests.conftest import run_cli


def test_eval_fuses_bm25_and_a_dual_encoder(monkeypatch, capsys, toy_beir, tiny_model_dir, tmp_path):
    parts = {}
    for name, args in (("bm25", ["--retriever", "bm25"]), ("dense", ["--model", tiny_model_dir])):
        code, text = run_cli(monkeypatch, capsys, "eval", "--data", toy_beir, "--out", tmp_path / name, "--k", 8, *args)
        assert code == 0, text
        parts[name] = read_run(tmp_path / name / "run.trec")
    code, text = run_cli(
        monkeypatch, capsys, "eval", "--data", toy_beir, "--out", tmp_path / "fused", "--k", 8,
        "--model", tiny_model_dir, "--retriever", "bm25+dense", "--fusion", "combsum:z-score,weights=0.3/0.7",
    )  # fmt: skip
    assert code == 0, text
    fused = read_run(tmp_path / "fused" / "run.trec")
    expected = Fusion("combsum", "z-score", (0.3, 0.7)).fuse([parts["bm25"], parts["dense"]])
    for q in expected:
        assert fused[q] == pytest.approx(expected[q], rel=1e-5, abs=1e-6)
    config = (tmp_path / "fused" / "config.toml").read_text()
    assert "combsum:z-score,weights=0.3/0.7" in config and str(tiny_model_dir) in config
    metrics = json.loads((tmp_path / "fused" / "metrics.json").read_text())
    assert metrics == pytest.approx(rw.evaluate(load_beir(toy_beir, "test").qrels, fused))
    code, text = run_cli(monkeypatch, capsys, "eval", "--data", toy_beir, "--out", tmp_path / "x", "--fusion", "rrf")
    assert code == 2 and "join them with +" in text


def test_pipeline_takes_a_list_of_first_stages(toy_beir, tiny_model_dir):
    test = load_beir(toy_beir, "test").own_split()
    model = rw.BiEncoder.load(tiny_model_dir)
    fused = rw.Pipeline(["bm25", model], depth=5).run(test).first
    bm25 = rw.Pipeline("bm25", depth=5).run(test).first
    dense = rw.Pipeline(model, depth=5).run(test).first
    expected = Fusion("rrf", depth=5).fuse([bm25, dense])
    assert fused.keys() == expected.keys()
    for q in expected:
        assert fused[q] == pytest.approx(expected[q])
    assert rw.Fusion is Fusion

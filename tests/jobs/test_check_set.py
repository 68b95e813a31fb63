"""The forgetting guard's check set: an out-of-domain split scored before, during and after training."""

import json
import shutil

import pytest

import rankwise as rw
from rankwise.data import load_beir
from tests.conftest import run_cli


def test_train_scores_the_check_set_beside_the_eval_split(monkeypatch, capsys, toy_beir, tiny_model_dir, tmp_path):
    other = shutil.copytree(toy_beir, tmp_path / "other")  # stands in for trec-dl-5k
    (other / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq0\td0\t1\nq1\td1\t1\nq2\td3\t1\n")
    tr = tmp_path / "train"
    code, text = run_cli(
        monkeypatch, capsys, "train", "--data", toy_beir, "--out", tr, "--model", tiny_model_dir, "--steps", 4,
        "--batch-size", 2, "--eval-split", "test", "--check-data", other, "--query-max-length", 16,
        "--doc-max-length", 32, "--eval-every", 2,
    )  # fmt: skip
    assert code == 0, text
    summary = json.loads((tr / "metrics.json").read_text())
    history = json.loads((tr / "eval_history.json").read_text())
    assert [h["step"] for h in history] == [0, 2, 4]
    assert all("check/ndcg@10" in h["metrics"] and "ndcg@10" in h["metrics"] for h in history)
    trained = rw.BiEncoder.load(tr / "model")
    trained.config.query_max_length, trained.config.doc_max_length = 16, 32
    check = load_beir(other, "test").own_split()
    assert summary["after"]["check/ndcg@10"] == pytest.approx(rw.evaluate_model(trained, check).metrics["ndcg@10"])
    assert "check_data" in (tr / "config.toml").read_text()
    code, text = run_cli(
        monkeypatch, capsys, "train", "--data", toy_beir, "--out", tmp_path / "x", "--model", tiny_model_dir,
        "--steps", 1, "--check-data", other,
    )  # fmt: skip
    assert code == 2 and "scored beside the eval split: give --eval-split too" in text

"""Best checkpoint and early stopping: the choice by hand, and a run that stops and keeps a step."""

import json

import numpy as np
import pytest

import rankwise as rw
from rankwise.data import load_beir
from rankwise.training.best import choose_step
from rankwise.training.loop import improved_within
from tests.conftest import run_cli


def test_choose_the_earliest_step_not_significantly_worse_than_the_best():
    rng = np.random.default_rng(0)
    base = rng.random(60)
    noise = rng.standard_normal(60)
    per_step = {
        10: base - 0.30,  # clearly worse
        20: base,  # as good as the best, up to noise
        30: base + 0.1 * (noise - noise.mean()) + 0.01,  # the best mean, 0.01 higher: t about 0.77
    }
    got = choose_step(per_step)
    assert (got.step, got.best) == (20, 30) and got.p >= 0.05 and got.mean < got.best_mean
    assert choose_step(per_step, alpha=0.999).step == 30  # a strict level keeps only the best itself
    assert choose_step({5: base, 9: base}).step == 5  # equal bests: the earliest


def test_improved_within_patience():
    evals = [{"step": s, "metrics": {"m": v}} for s, v in zip((1, 2, 3, 4), (0.5, 0.6, 0.6, 0.55))]
    assert improved_within(evals[:2], "m", 2)
    assert improved_within(evals[:3], "m", 2)  # 0.6 at step 2 is within the last two
    assert not improved_within(evals, "m", 2)  # steps 3 and 4 never beat 0.6


def test_train_stops_early_and_keeps_the_chosen_step(monkeypatch, capsys, toy_beir, tiny_model_dir, tmp_path):
    tr = tmp_path / "train"
    code, text = run_cli(
        monkeypatch, capsys, "train", "--data", toy_beir, "--out", tr, "--model", tiny_model_dir, "--steps", 6,
        "--batch-size", 2, "--eval-split", "test", "--eval-every", 1, "--best-metric", "ndcg@10", "--patience", 1,
        "--lr", "1e-12", "--query-max-length", 16, "--doc-max-length", 32,
    )  # fmt: skip
    assert code == 0, text
    summary = json.loads((tr / "metrics.json").read_text())
    # lr 1e-12: every evaluation is the same, so step 2 does not beat step 1 and the run stops there
    assert summary["best"]["steps_evaluated"] == [1, 2] and summary["best"]["step"] == 1
    assert not (tr / "candidates").exists()
    history = json.loads((tr / "eval_history.json").read_text())
    assert [h["step"] for h in history] == [0, 1, 2]  # the curve ends where training stopped
    kept = rw.BiEncoder.load(tr / "model")
    kept.config.query_max_length, kept.config.doc_max_length = 16, 32
    test = load_beir(toy_beir, "test").own_split()
    assert rw.evaluate_model(kept, test).metrics["ndcg@10"] == pytest.approx(summary["after"]["ndcg@10"])
    code, text = run_cli(
        monkeypatch, capsys, "train", "--data", toy_beir, "--out", tmp_path / "x", "--model", tiny_model_dir,
        "--steps", 2, "--best-metric", "ndcg@10",
    )  # fmt: skip
    assert code == 2 and "set eval_every too" in text

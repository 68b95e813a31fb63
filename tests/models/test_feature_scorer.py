"""Feature scorers: shapes and padding, the context-aware scorer's equivariance, save/load, every
loss of the library through the one loop, and the ltr commands."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import rankwise.losses as L
from rankwise.data.letor import LetorData, write_letor
from rankwise.metrics.model import evaluate_model
from rankwise.models.feature_scorer import AttentionScorer, LinearScorer, MLPScorer, load_scorer, make_scorer
from rankwise.training import TrainConfig, train
from tests.conftest import run_cli


def toy_letor(n_queries=24, seed=0, n_features=6) -> LetorData:
    """Grades follow the first two features (plus noise), so a scorer can learn them."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(4, 9, n_queries)
    x = rng.random((sizes.sum(), n_features)).astype(np.float32)
    util = x[:, 0] + 0.5 * x[:, 1] + 0.1 * rng.standard_normal(len(x))
    labels = np.digitize(util, [0.6, 1.0, 1.3]).astype(np.float32)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    return LetorData(x, labels, [f"q{i}" for i in range(n_queries)], offsets, [f"d{i}" for i in range(len(x))])


@pytest.mark.parametrize("kind", ["linear", "mlp", "attention"])
def test_padding_does_not_change_real_scores(kind):
    torch.manual_seed(0)
    model = make_scorer(kind, 5, **({"dropout": 0.0} if kind != "linear" else {})).eval()
    x = torch.randn(1, 4, 5)
    short = model(x[:, :3], torch.ones(1, 3, dtype=torch.bool))
    padded = model(x, torch.tensor([[True, True, True, False]]))
    torch.testing.assert_close(short, padded[:, :3], atol=1e-5, rtol=1e-5)


def test_attention_scorer_is_permutation_equivariant_and_uses_context():
    torch.manual_seed(0)
    model = AttentionScorer(5, d_model=16, dropout=0.0).eval()
    x, mask = torch.randn(2, 6, 5), torch.ones(2, 6, dtype=torch.bool)
    perm = torch.randperm(6)
    torch.testing.assert_close(model(x, mask)[:, perm], model(x[:, perm], mask), atol=1e-5, rtol=1e-5)
    other = x.clone()
    other[:, 1:] = torch.randn(2, 5, 5)  # the same first item in another list scores differently
    assert not torch.allclose(model(x, mask)[:, 0], model(other, mask)[:, 0])
    mlp = MLPScorer(5, dropout=0.0).eval()
    torch.testing.assert_close(mlp(x, mask)[:, 0], mlp(other, mask)[:, 0])  # the MLP has no context


def test_save_and_load_give_the_same_scores(tmp_path):
    data = toy_letor()
    for model in (LinearScorer(6), MLPScorer(6, hidden=(8,)), AttentionScorer(6, d_model=8)):
        model.save(tmp_path / model.scorer)
        back = load_scorer(tmp_path / model.scorer)
        np.testing.assert_allclose(
            back.predict(data.features, data.offsets), model.predict(data.features, data.offsets), atol=1e-6
        )


@pytest.mark.parametrize("name", L.available())
def test_every_loss_trains_a_feature_scorer(name):
    from rankwise.families import family_of

    if L.facts(name).needs_teacher:
        pytest.skip("LETOR lists carry no teacher scores")
    data = toy_letor()
    torch.manual_seed(0)
    model = MLPScorer(6, hidden=(16,), dropout=0.0)
    # batch 24: every list each step, so the batch is the same one the loss is measured on
    cfg = TrainConfig(loss=name, batch_size=24, steps=30, lr=1e-2, weight_decay=0.0, warmup_ratio=0.0)
    whole = family_of(model).batch(data.examples(), np.random.default_rng(0), cfg, 0, None, None)

    def full_loss() -> float:  # the loss over every list, the same batch before and after
        with torch.no_grad():
            return cfg.loss(model(whole.x, whole.mask), whole.labels, whole.mask).item()

    before, ndcg_before = full_loss(), evaluate_model(model, data).metrics["ndcg@10"]
    res = train(model, data.examples(), cfg, log=lambda _: None)
    assert all(np.isfinite([h.loss for h in res.history]))
    if name in ("lambdarank", "irpo"):  # weights follow the current ranking, so the value is no fixed objective
        assert evaluate_model(model, data).metrics["ndcg@10"] > ndcg_before
    else:
        assert full_loss() < before


def test_learned_scorer_beats_random_and_resumes_exactly(tmp_path):
    data = toy_letor(40)
    cfg = TrainConfig(loss="lambdaloss", batch_size=8, steps=40, lr=1e-2, checkpoint_every=20, seed=1)
    torch.manual_seed(0)
    untrained = MLPScorer(6, hidden=(16,))
    before = evaluate_model(untrained, data).metrics["ndcg@10"]
    runs = []
    for stop in (None, 20):
        torch.manual_seed(0)
        model = MLPScorer(6, hidden=(16,))
        out = tmp_path / f"run-{stop}"
        train(model, data.examples(), cfg, out, stop_after=stop, log=lambda _: None)
        if stop:
            torch.manual_seed(0)
            model = MLPScorer(6, hidden=(16,))
            train(model, data.examples(), cfg, out, resume=True, log=lambda _: None)
        runs.append(model)
    for a, b in zip(runs[0].state_dict().values(), runs[1].state_dict().values()):
        torch.testing.assert_close(a, b)
    assert evaluate_model(runs[0], data).metrics["ndcg@10"] > before + 0.05


def test_ltr_train_and_eval_commands(monkeypatch, capsys, tmp_path):
    write_letor(tmp_path / "train.txt", toy_letor(30, seed=1))
    write_letor(tmp_path / "test.txt", toy_letor(10, seed=2))
    code, text = run_cli(
        monkeypatch,
        capsys,
        "ltr",
        "train",
        "--data",
        tmp_path,
        "--train",
        "train",
        "--test",
        "test",
        "--out",
        tmp_path / "run",
        "--scorer",
        "attention",
        "--loss",
        "neuralndcg",
        "--steps",
        20,
        "--eval-every",
        10,
    )
    assert code == 0, text
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert summary["best_step"] in (10, 20) and "ndcg@10" in summary["test"]
    code, text = run_cli(
        monkeypatch,
        capsys,
        "ltr",
        "eval",
        "--model",
        tmp_path / "run" / "model",
        "--test",
        tmp_path / "test.txt",
        "--out",
        tmp_path / "ev",
    )
    assert code == 0, text
    again = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert again["ndcg@10"] == pytest.approx(summary["test"]["ndcg@10"])
    code, text = run_cli(monkeypatch, capsys, "compare", tmp_path / "ev", "--qrels", tmp_path / "ev" / "qrels.tsv")
    assert code == 0, text
    code, text = run_cli(monkeypatch, capsys, "ltr", "train", "--train", tmp_path / "nope.txt", "--out", tmp_path / "x")
    assert code != 0 and "no such LETOR file" in text and "Traceback" not in text

"""Training diagnostics: values by hand on a fixed batch, logged during training, shown in the report."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rankwise.data.examples import TeacherScores, TrainExample
from rankwise.training.batching import InBatch
from rankwise.training.diagnostics import batch_diagnostics


def test_values_by_hand():
    # query 0: positive in column 0, hard negative in column 2; query 1: positive 1, hard negative 3
    scores = torch.tensor([[2.0, 0.5, 1.0, 3.0], [0.0, 1.0, -1.0, 2.0]], requires_grad=True)
    labels = torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]])
    batch = InBatch(["a", "b"], list("wxyz"), list("WXYZ"), labels, [0, 1], [[(2, 0)], [(3, 0)]], [0, 0])
    exs = [TrainExample("a", [("w", "W")], [("y", "Y")]), TrainExample("b", [("x", "X")], [("z", "Z")])]
    loss = torch.nn.functional.cross_entropy(scores, torch.tensor([0, 1]), reduction="sum") * torch.tensor([1.0])
    d = batch_diagnostics(scores, loss.sum(), batch, exs)
    # ranks: row 0 -> 1.0 is 3rd of (2, 0.5, 1, 3); row 1 -> 2.0 is 1st; margins 1.0 and -1.0
    assert d["hard_rank"] == 2.0 and d["hard_margin"] == 0.0
    assert d["fn_rate"] == 0.5  # query 1's hard negative outscores its positive
    g = torch.autograd.grad(loss.sum(), scores, retain_graph=True)[0].abs().sum(1)
    share = g / g.sum()
    assert d["grad_top_share"] == pytest.approx(float(share.max()))
    assert d["grad_eff_queries"] == pytest.approx(float(1 / (share**2).sum()))
    exs[1].scores = TeacherScores([5.0], [1.0])  # the teacher says query 1's negative is no positive
    exs[0].scores = TeacherScores([1.0], [2.0])  # and query 0's is
    assert batch_diagnostics(scores, loss.sum(), batch, exs)["fn_rate"] == 0.5


def test_logged_in_training_and_shown_in_the_report(monkeypatch, capsys, toy_beir, tiny_model_dir, tmp_path):
    from tests.conftest import run_cli

    out = tmp_path / "run"
    code, text = run_cli(
        monkeypatch,
        capsys,
        "train",
        "--data",
        toy_beir,
        "--out",
        out,
        "--model",
        tiny_model_dir,
        "--steps",
        4,
        "--batch-size",
        2,
        "--query-max-length",
        16,
        "--doc-max-length",
        16,
        "--diagnostics-every",
        2,
        "--eval-split",
        "test",
    )
    assert code == 0, text
    history = json.loads((out / "history.json").read_text())
    logged = [h["step"] for h in history if "diag_grad_eff_queries" in h["extra"]]
    assert logged == [1, 3]  # steps 0 and 2, counted from 1 in the log
    assert all(1.0 <= h["extra"]["diag_grad_eff_queries"] <= 2.0 for h in history if h["step"] in logged)
    code, text = run_cli(monkeypatch, capsys, "report", out)
    assert code == 0, text
    assert (out / "training_diagnostics.png").is_file() and "Training diagnostics" in (out / "report.md").read_text()
    assert np.isfinite([h["loss"] for h in history]).all()

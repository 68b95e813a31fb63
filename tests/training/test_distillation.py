"""Distillation losses in the in-batch trainer: only the (query, document) pairs the teacher scored."""

import numpy as np
import pytest
import torch

from rankwise.data import TeacherScores, TrainExample
from rankwise.errors import ConfigError
from rankwise.models import BiEncoder
from rankwise.training import TrainConfig, train
from rankwise.training.batching import build_inbatch, teacher_matrix


def _examples(n: int, scored: bool = True) -> list[TrainExample]:
    out = []
    for i in range(n):
        out.append(
            TrainExample(
                query=f"find item {i} colour {'red green blue'.split()[i % 3]}",
                positives=[
                    (f"p{i}", f"item {i} is {'red green blue'.split()[i % 3]} and round"),
                    (f"p{i}b", f"the {i} item, coloured {'red green blue'.split()[i % 3]}"),
                ],
                negatives=[(f"n{i}a", f"item {i + 1} is square"), (f"n{i}b", f"nothing about {i * 7}")],
                scores=TeacherScores([5.0 + i, 4.0], [1.0 - i / 10, -2.0]) if scored else None,
            )
        )
    return out


def test_teacher_matrix_holds_only_the_scored_pairs():
    exs = _examples(2) + _examples(1, scored=False)
    batch = build_inbatch(exs, np.random.default_rng(0), n_negatives=1)
    t, mask = teacher_matrix(batch, exs)
    for i in range(2):
        pos = batch.positive[i]
        k = [d for d, _ in exs[i].positives].index(batch.doc_ids[pos])
        assert t[i, pos] == exs[i].scores.positives[k]
        ((col, j),) = batch.hard[i]
        assert t[i, col] == exs[i].scores.negatives[j]
        assert mask[i].sum() == 2 and mask[i, pos] and mask[i, col]
    assert not mask[2].any()  # no teacher scores: no loss for that query


def test_margin_mse_trains_on_the_teachers_margins(tiny_model_dir, tmp_path):
    exs = _examples(6)
    model = BiEncoder.load(str(tiny_model_dir), query_max_length=16, doc_max_length=32)
    for m in model.backbone.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    cfg = TrainConfig(
        steps=1,
        batch_size=3,
        lr=1e-3,
        negatives="file",
        loss="margin_mse",
        query_max_length=16,
        doc_max_length=32,
        checkpoint_every=100,
    )
    # the first batch as the plan will draw it, scored by the untrained model
    from rankwise.training.plan import Plan

    plan = Plan(cfg, exs)
    plan.prepare(model)
    batch_exs, batch = plan.batch(0)
    with torch.no_grad():
        q = model.embed(batch.queries, "query")
        d = model.embed(batch.docs, "doc")
    s = q @ d.T
    expected = []
    for i, ex in enumerate(batch_exs):
        p = batch.positive[i]
        ((c, j),) = batch.hard[i]
        k = [x for x, _ in ex.positives].index(batch.doc_ids[p])
        expected.append(((s[i, p] - s[i, c]) - (ex.scores.positives[k] - ex.scores.negatives[j])) ** 2)
    res = train(model, exs, cfg, tmp_path / "run")
    assert res.history[0].loss == pytest.approx(float(torch.stack(expected).mean()), rel=1e-4)


def test_distillation_needs_teacher_scores_and_hard_negatives(tiny_model_dir, tmp_path):
    model = BiEncoder.load(str(tiny_model_dir))
    cfg = TrainConfig(steps=1, batch_size=2, negatives="file", loss="kl", checkpoint_every=100)
    with pytest.raises(ConfigError, match="needs teacher scores"):
        train(model, _examples(4, scored=False), cfg, tmp_path / "a")
    with pytest.raises(ConfigError, match="hard negatives"):
        train(model, _examples(4), cfg.model_copy(update={"negatives": "inbatch"}), tmp_path / "b")

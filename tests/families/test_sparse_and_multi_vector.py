"""The sparse and multi-vector families work where a model works: the loop (gradient caching,
resume), evaluation with sparsity figures, reranking, teaching, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rankwise.data import examples_from_qrels, load_beir
from rankwise.families import family_of, load_model
from rankwise.index.rerank import BM25Stage, Pipeline
from rankwise.models.multi_vector import MultiVectorEncoder
from rankwise.models.sparse_encoder import SparseEncoder
from rankwise.training import TrainConfig, train
from tests.conftest import run_cli

MAKERS = {
    "sparse": lambda d: SparseEncoder(str(d)),
    "inference-free": lambda d: SparseEncoder(str(d), inference_free=True),
    "multi-vector": lambda d: MultiVectorEncoder(str(d)),
}


def _no_dropout(model):
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    return model


def _cfg(tiny_model_dir, **kw):
    base = dict(
        model=str(tiny_model_dir),
        batch_size=4,
        steps=4,
        lr=1e-3,
        checkpoint_every=2,
        doc_max_length=24,
        query_max_length=16,
    )
    return TrainConfig(**(base | kw))


@pytest.mark.parametrize("kind", MAKERS)
def test_gradient_caching_and_resume_give_the_plain_run(kind, tiny_model_dir, toy_beir, tmp_path):
    examples = examples_from_qrels(load_beir(toy_beir, "train"))
    plain = train(_no_dropout(MAKERS[kind](tiny_model_dir)), examples, _cfg(tiny_model_dir), tmp_path / "plain")
    cached = train(
        _no_dropout(MAKERS[kind](tiny_model_dir)), examples, _cfg(tiny_model_dir, cache_chunk=2), tmp_path / "c"
    )
    assert [h.loss for h in cached.history] == pytest.approx([h.loss for h in plain.history], rel=1e-4)
    train(_no_dropout(MAKERS[kind](tiny_model_dir)), examples, _cfg(tiny_model_dir), tmp_path / "part", stop_after=3)
    resumed = train(
        _no_dropout(MAKERS[kind](tiny_model_dir)), examples, _cfg(tiny_model_dir), tmp_path / "part", resume=True
    )
    assert resumed.resumed_from == 2
    assert [h.loss for h in resumed.history] == pytest.approx([h.loss for h in plain.history], rel=1e-5)


@pytest.mark.parametrize("kind", MAKERS)
def test_the_family_retrieves_reranks_and_teaches(kind, tiny_model_dir, toy_beir, tmp_path):
    model = MAKERS[kind](tiny_model_dir)
    family = family_of(model)
    test = load_beir(toy_beir, "test")
    result = family.evaluate(test, k=5)
    assert 0 <= result.metrics["ndcg@10"] <= 1
    if kind != "multi-vector":
        assert result.metrics["nonzero_doc"] > 0 and result.metrics["flops_per_query"] > 0
    docs = ["apples are red fruit", "snow falls in winter"]
    np.testing.assert_allclose(
        family.teacher().score("apples facts", docs), model.score(["apples facts"], docs)[0], rtol=1e-5
    )
    run = Pipeline(BM25Stage(), family.second_stage(), depth=4).run(test).run
    assert set(run) == set(test.split_queries)
    model.save(tmp_path / "saved")
    assert type(load_model(tmp_path / "saved")) is type(model)  # recognised from its files


@pytest.mark.parametrize("kind", ["sparse", "inference-free", "multi-vector"])
def test_cli_trains_and_evaluates_each_kind(kind, tiny_model_dir, toy_beir, tmp_path, monkeypatch, capsys):
    code, text = run_cli(
        monkeypatch,
        capsys,
        "train",
        "--data",
        toy_beir,
        "--out",
        tmp_path / "run",
        "--kind",
        kind,
        "--model",
        tiny_model_dir,
        "--steps",
        2,
        "--batch-size",
        4,
        "--doc-max-length",
        24,
    )
    assert code == 0, text
    code, text = run_cli(
        monkeypatch,
        capsys,
        "eval",
        "--model",
        tmp_path / "run" / "model",
        "--data",
        toy_beir,
        "--split",
        "test",
        "--out",
        tmp_path / "eval",
    )
    assert code == 0, text
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert 0 <= metrics["ndcg@10"] <= 1
    if kind != "multi-vector":  # sparsity is part of a sparse model's evaluation
        assert metrics["nonzero_doc"] > 0 and "flops_per_query" in metrics


@pytest.mark.parametrize("kind", ["sparse", "multi-vector"])
def test_mining_retrieves_and_teaches_with_the_family(kind, tiny_model_dir, toy_beir, tmp_path):
    import rankwise as rw

    folder = MAKERS[kind](tiny_model_dir).save(tmp_path / kind)
    train_split = rw.load_dataset(toy_beir, "train")
    mined = rw.mine(train_split, f"dense:k=2,window=1-8,model={folder},teacher={folder}", log_fn=lambda _: None)
    assert mined and all(len(ex.negatives) == 2 for ex in mined)
    assert all(ex.scores is not None for ex in mined)  # the teacher scored the candidates
    positives = {d for ex in mined for d, _ in ex.positives}
    assert not any(d in positives and d == ex.positives[0][0] for ex in mined for d, _ in ex.negatives)


def test_the_config_s_bm25_shaping_reaches_the_head_fit(tiny_model_dir, toy_beir):
    from rankwise.models.sparse_head import fit_fresh_head

    examples = examples_from_qrels(load_beir(toy_beir, "train"))
    cfg = _cfg(tiny_model_dir, head_fit_steps=5, head_fit_bm25_steps=4, head_fit_bm25_lr=1e-3, seed=7)
    via_config, by_hand, default_lr = (SparseEncoder(str(tiny_model_dir), seed=7) for _ in range(3))
    family_of(via_config).prepare_training(examples, cfg)
    documents = list(dict.fromkeys(t for ex in examples for _, t in ex.positives + ex.negatives))
    fit = fit_fresh_head(by_hand, documents, steps=5, seed=7, bm25_steps=4, bm25_lr=1e-3)
    assert fit.bm25_loss is not None
    fit_fresh_head(default_lr, documents, steps=5, seed=7, bm25_steps=4)  # bm25_lr 3e-4
    plain = SparseEncoder(str(tiny_model_dir), seed=7)
    family_of(plain).prepare_training(examples, cfg.model_copy(update={"head_fit_bm25_steps": 0}))
    head = "cls.predictions.transform.dense.weight"
    models = {"c": via_config, "h": by_hand, "p": plain, "d": default_lr}
    weights = {n: dict(m.mlm.named_parameters())[head] for n, m in models.items()}
    assert torch.equal(weights["c"], weights["h"])
    assert not torch.equal(weights["c"], weights["p"]) and not torch.equal(weights["c"], weights["d"])


def _taught(kind: str, tiny_model_dir, examples, prefer_first: bool, tmp_path) -> list[float]:
    """A student trained on KL toward hand-set teacher scores alone: the margin of each query's
    first negative over its second."""
    from dataclasses import replace

    from rankwise.data.examples import TeacherScores

    high, low = (2.0, 0.0) if prefer_first else (0.0, 2.0)
    taught = [replace(ex, scores=TeacherScores([3.0], [high, low])) for ex in examples]
    model = _no_dropout(MAKERS[kind](tiny_model_dir))
    # the student's temperature at each tiny model's spread of scores, so its softmax is not saturated
    tau = {"sparse": 30.0, "inference-free": 0.05, "multi-vector": 0.2}[kind]
    cfg = _cfg(
        tiny_model_dir, loss=f"kl:temperature={tau}", negatives="file", negatives_per_query=2, steps=40,
        checkpoint_every=40, head_fit_steps=0,  # the drawn head: a fitted one leaves these short texts no shared terms
    )  # fmt: skip
    train(model, taught, cfg, tmp_path / f"{kind}-{prefer_first}")
    scores = [model.score([ex.query], [t for _, t in ex.negatives])[0] for ex in examples]
    return [float(s[0] - s[1]) for s in scores]


@pytest.mark.parametrize("kind", MAKERS)
def test_each_family_learns_a_teacher_s_order_as_a_student(kind, tiny_model_dir, toy_beir, tmp_path):
    """Two runs from one start differ only in which of two negatives the teacher puts above the
    other (the labels cannot tell them apart): each student orders every pair as its teacher did."""
    split = load_beir(toy_beir, "train")
    corpus, examples = split.corpus, examples_from_qrels(split)
    for i, ex in enumerate(examples):
        a, b = f"d{(i + 4) % 8}", f"d{(i + 5) % 8}"
        ex.negatives = [(a, corpus[a].full_text), (b, corpus[b].full_text)]
    first = _taught(kind, tiny_model_dir, examples, True, tmp_path)
    second = _taught(kind, tiny_model_dir, examples, False, tmp_path)
    assert all(f > 0 for f in first) and all(s < 0 for s in second), (first, second)

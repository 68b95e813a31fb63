"""Gradient caching gives the plain computation's gradients, for InfoNCE and list losses, and trains."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rankwise.data import examples_from_qrels, load_beir
from rankwise.losses import get
from rankwise.models import BiEncoder
from rankwise.training import TrainConfig, train
from rankwise.training.batching import build_inbatch
from rankwise.training.grad_cache import forward_backward
from tests.conftest import assert_grads_close, make_tiny_bert


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_bert(tmp_path_factory.mktemp("tiny"), hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def _grads(model, batch, loss_fn, **kw):
    model.backbone.zero_grad(set_to_none=True)
    labels = batch.labels.double()

    def loss_of(scores):
        return loss_fn(scores.double(), labels), {}

    loss, _, tokens = forward_backward(model, batch.queries, batch.docs, loss_of, **kw)
    return loss.item(), {n: p.grad.clone() for n, p in model.backbone.named_parameters() if p.grad is not None}, tokens


@pytest.mark.parametrize("spec", ["infonce:temperature=0.05", "lambdaloss:ndcg2pp", "mw:temperature=0.05"])
def test_cached_gradients_equal_the_plain_ones(model_dir, toy_beir, spec):
    examples = examples_from_qrels(load_beir(toy_beir, "test")) + examples_from_qrels(load_beir(toy_beir, "train"))
    batch = build_inbatch(examples, np.random.default_rng(0))
    model = BiEncoder.load(str(model_dir), query_max_length=16, doc_max_length=16)
    model.train()
    loss_fn = get(spec)
    plain_loss, plain, plain_tokens = _grads(model, batch, loss_fn)
    for chunk in (1, 3):
        cached_loss, cached, tokens = _grads(model, batch, loss_fn, cache_chunk=chunk)
        assert cached_loss == pytest.approx(plain_loss, rel=1e-6)
        assert plain.keys() == cached.keys() and plain
        for name in plain:
            assert_grads_close(cached[name], plain[name], name)
        assert tokens.real == plain_tokens.real


def test_dropout_draws_the_same_masks_in_both_passes(tiny_model_dir, toy_beir):
    # with dropout on, a cached step must still be a true gradient of one forward: the second pass
    # replays each chunk's random state, so the cached gradients equal a plain pass over the same chunks
    examples = examples_from_qrels(load_beir(toy_beir, "test"))
    batch = build_inbatch(examples, np.random.default_rng(0))
    model = BiEncoder.load(str(tiny_model_dir), query_max_length=16, doc_max_length=16)
    model.train()
    loss_fn = get("infonce:temperature=0.1")
    torch.manual_seed(5)
    _, cached, _ = _grads(model, batch, loss_fn, cache_chunk=len(batch.docs))  # one chunk a side
    torch.manual_seed(5)
    _, plain, _ = _grads(model, batch, loss_fn)
    assert plain.keys() == cached.keys() and plain
    for name in plain:
        assert_grads_close(cached[name], plain[name], name)


def test_training_with_cache_chunk_runs_and_resumes(model_dir, toy_beir, tmp_path):
    examples = examples_from_qrels(load_beir(toy_beir, "train"))
    cfg = TrainConfig(
        model=str(model_dir),
        batch_size=4,
        steps=4,
        lr=1e-3,
        cache_chunk=2,
        checkpoint_every=2,
        query_max_length=16,
        doc_max_length=16,
        warmup_ratio=0.0,
    )
    full = BiEncoder.load(cfg.model)
    res = train(full, examples, cfg, tmp_path / "full")
    assert all(np.isfinite(h.loss) for h in res.history)
    train(BiEncoder.load(cfg.model), examples, cfg, tmp_path / "part", stop_after=2)
    resumed = BiEncoder.load(cfg.model)
    train(resumed, examples, cfg, tmp_path / "part", resume=True)
    a, b = full.backbone.state_dict(), resumed.backbone.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)

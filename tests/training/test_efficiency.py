"""The trainer's token and memory savings change cost, not results."""

import numpy as np
import pytest
import torch

from rankwise.data import examples_from_qrels, load_beir
from rankwise.models import BiEncoder
from rankwise.training import TrainConfig, train
from rankwise.training.samplers import RandomBatches
from tests.conftest import assert_grads_close


def test_chunked_embedding_equals_one_padded_batch(tiny_model_dir):
    model = BiEncoder.load(str(tiny_model_dir), doc_max_length=64)
    model.train(False)
    texts = ["short", "a much longer text " * 10, "mid sized text here", "x " * 40, "tiny"]
    whole = model.embed(texts, "doc")
    chunked, (real, padded) = model.embed_counted(texts, "doc", chunk_tokens=64)
    assert torch.allclose(whole, chunked, atol=1e-5)
    assert torch.allclose(
        whole, model.embed(texts, "doc", chunk_tokens=10_000), atol=1e-5
    )  # one chunk, sorted: order restored
    assert padded < len(texts) * max(len(x) for x in model.token_ids(texts, "doc"))  # fewer padded positions
    # gradients agree as well; a random projection, since a plain sum of LayerNorm'd, normalised
    # outputs is nearly constant and its gradient is rounding noise
    w = torch.randn(whole.shape, generator=torch.Generator().manual_seed(0))
    first = list(model.backbone.parameters())[0]
    g1 = torch.autograd.grad((whole * w).sum(), first)[0]
    g2 = torch.autograd.grad((model.embed(texts, "doc", chunk_tokens=64) * w).sum(), first)[0]
    assert float(g1.abs().max()) > 1e-3
    assert_grads_close(g2, g1)


def test_token_cache_tokenises_each_text_once(tiny_model_dir, monkeypatch):
    model = BiEncoder.load(str(tiny_model_dir))
    calls = []
    real = model.tokenizer.__call__
    monkeypatch.setattr(
        type(model.tokenizer), "__call__", lambda self, texts, **kw: (calls.append(list(texts)), real(texts, **kw))[1]
    )
    cache: dict = {}
    model.embed(["a b", "c d"], "doc", token_cache=cache)
    model.embed(["a b", "e f"], "doc", token_cache=cache)
    assert calls == [["a b", "c d"], ["e f"]]


def test_length_buckets_cut_padding_and_still_cover_each_epoch():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 256, 640)
    plain, bucketed = RandomBatches().bind(640, 32, 0), RandomBatches(bucket=10).bind(640, 32, 0)
    bucketed.lengths = lengths

    def padded(s):
        return sum(len(b) * lengths[b].max() for b in (s.indices(step, []) for step in range(20)))

    assert padded(bucketed) < 0.7 * padded(plain)
    seen = np.concatenate([bucketed.indices(step, []) for step in range(20)])
    assert sorted(seen.tolist()) == list(range(640))  # one epoch = every example once
    assert not np.array_equal(bucketed.indices(0, []), bucketed.indices(20, []))  # the next epoch reshuffles


def _train(topics_beir, tiny_model_dir, tmp_path, name, dropout: float = 0.0, **kw):
    ds = load_beir(topics_beir, "train")
    model = BiEncoder.load(str(tiny_model_dir))
    for m in model.backbone.modules():  # chunking reorders dropout draws; without dropout results must agree
        if isinstance(m, torch.nn.Dropout):
            m.p = dropout
    cfg = TrainConfig(
        steps=3, batch_size=4, lr=1e-3, query_max_length=16, doc_max_length=64, checkpoint_every=100, **kw
    )
    res = train(model, examples_from_qrels(ds), cfg, tmp_path / name)
    return model, res


def test_step_log_and_savings_keep_the_result(toy_beir, tiny_model_dir, tmp_path, monkeypatch, caplog):
    base, res = _train(toy_beir, tiny_model_dir, tmp_path, "base")
    log = res.history[-1]
    assert log.tokens_per_s > 0 and 0 <= log.padding < 1 and log.peak_rss_mb > 100
    for options in ({"chunk_tokens": 64}, {"chunk_tokens": 0}, {"activation_checkpointing": True}):
        # same losses step by step (weights are not compared: Adam turns float-rounding noise in
        # near-zero gradients into full-size steps of those weights)
        _, other = _train(toy_beir, tiny_model_dir, tmp_path, str(options), **options)
        assert [h.loss for h in other.history] == pytest.approx([h.loss for h in res.history], rel=1e-4), options
    import rankwise.training.loop as loop

    monkeypatch.setattr(loop, "bf16_is_native", lambda device: False)  # say so where bf16 would be emulated
    with caplog.at_level("WARNING", logger="rankwise.training.loop"):
        bf16, res16 = _train(toy_beir, tiny_model_dir, tmp_path, "bf16", bf16=True)
    assert "without native bf16 support" in caplog.text
    assert all(np.isfinite(h.loss) for h in res16.history)
    assert next(bf16.backbone.parameters()).dtype == torch.float32  # autocast: weights stay float32


def test_with_dropout_on_chunking_draws_other_masks_and_repeats_exactly(toy_beir, tiny_model_dir, tmp_path):
    """docs/training.md: with dropout on, chunk_tokens gives other (equally valid) dropout samples
    than no chunking, and the same ones again for the same setting."""
    _, plain = _train(toy_beir, tiny_model_dir, tmp_path, "plain", dropout=0.3, chunk_tokens=0)
    _, chunked = _train(toy_beir, tiny_model_dir, tmp_path, "chunked", dropout=0.3, chunk_tokens=64)
    _, again = _train(toy_beir, tiny_model_dir, tmp_path, "again", dropout=0.3, chunk_tokens=64)
    assert [h.loss for h in chunked.history] == [h.loss for h in again.history]
    assert [h.loss for h in chunked.history] != pytest.approx([h.loss for h in plain.history], rel=1e-4)


def test_chunking_is_on_by_default_and_sized_by_device():
    """The throughput profile: without chunks a batch pads every text to its longest one."""
    cfg = TrainConfig()
    assert cfg.chunk_tokens_on("cpu") == 4096 and cfg.chunk_tokens_on(torch.device("cuda", 0)) == 65536
    assert TrainConfig(chunk_tokens=0).chunk_tokens_on("cpu") is None
    assert TrainConfig(chunk_tokens=512).chunk_tokens_on("cuda") == 512

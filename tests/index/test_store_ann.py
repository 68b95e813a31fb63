"""The on-disk embedding store (resumable shards, memory-mapped) and approximate indexes."""

from __future__ import annotations

import numpy as np
import pytest

from rankwise.errors import RankwiseError
from rankwise.index.ann import auto_structure, build_index, exact_search, recall_vs_exact
from rankwise.index.store import EmbeddingStore


def fake_encode(texts: list[str]) -> np.ndarray:
    """A deterministic 'encoder': each text's vector from its hash."""
    return np.stack([np.random.default_rng(abs(hash(t)) % 2**32).standard_normal(8) for t in texts]).astype(np.float32)


def test_store_resumes_without_recomputing_finished_shards(tmp_path):
    texts = [f"doc {i}" for i in range(25)]
    calls: list[int] = []

    def flaky(batch: list[str]) -> np.ndarray:
        calls.append(len(batch))
        if len(calls) == 3:
            raise KeyboardInterrupt  # the build is killed during its third shard
        return fake_encode(batch)

    with pytest.raises(KeyboardInterrupt):
        EmbeddingStore.build(tmp_path / "s", flaky, texts, dim=8, model_key="m", shard_size=10, log=lambda _: None)
    calls.clear()
    store = EmbeddingStore.build(tmp_path / "s", flaky, texts, dim=8, model_key="m", shard_size=10, log=lambda _: None)
    assert calls == [5]  # only the last shard was encoded again
    emb = store.embeddings()
    assert isinstance(emb, np.memmap) and emb.shape == (25, 8)
    np.testing.assert_array_equal(emb, fake_encode(texts))
    with pytest.raises(ValueError):
        emb[0, 0] = 1.0  # read-only
    with pytest.raises(RankwiseError, match="another model, corpus or shard size"):
        EmbeddingStore.build(tmp_path / "s", fake_encode, texts, dim=8, model_key="other", shard_size=10)


def test_exact_search_streams_to_the_same_answer():
    rng = np.random.default_rng(0)
    emb, q = rng.standard_normal((1000, 16)).astype(np.float32), rng.standard_normal((7, 16)).astype(np.float32)
    want = np.argsort(-(q @ emb.T), axis=1)[:, :5]
    np.testing.assert_array_equal(exact_search(emb, q, 5, batch=128), want)


def test_hnsw_and_ivfpq_recall_against_exact(tmp_path):
    rng = np.random.default_rng(1)
    centers = rng.standard_normal((50, 32))
    emb = (centers[rng.integers(0, 50, 20_000)] + 0.3 * rng.standard_normal((20_000, 32))).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    mm = np.memmap(tmp_path / "e.f32", dtype=np.float32, mode="w+", shape=emb.shape)
    mm[:] = emb
    queries = emb[rng.choice(len(emb), 200, replace=False)] + 0.05 * rng.standard_normal((200, 32)).astype(np.float32)
    hnsw = build_index(mm, "hnsw", batch=4096)
    assert recall_vs_exact(hnsw, mm, queries, 10) >= 0.95
    ivfpq = build_index(mm, "ivfpq", nlist=64, nprobe=16)
    assert 0.3 < recall_vs_exact(ivfpq, mm, queries, 10) <= 1.0
    assert ivfpq.memory_bytes() < hnsw.memory_bytes() / 3  # codes, not vectors
    assert [auto_structure(n) for n in (10_000, 1_000_000, 10_000_000)] == ["flat", "hnsw", "ivfpq"]


def test_tune_recall_raises_the_search_effort_until_the_target():
    from rankwise.index.ann import tune_recall

    rng = np.random.default_rng(3)
    base = rng.standard_normal(16)
    emb = (base + 0.05 * rng.standard_normal((20_000, 16))).astype(np.float32)  # a narrow cone: hard for HNSW
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    queries = emb[:100] + 0.001 * rng.standard_normal((100, 16)).astype(np.float32)
    index = build_index(emb, "hnsw", ef_search=16, hnsw_m=8)
    low = recall_vs_exact(index, emb, queries, 10)
    high = tune_recall(index, emb, queries, target=0.95)
    assert high >= max(low, 0.95) and index.index.hnsw.efSearch > 16

"""Sparse and multi-vector retrieval against brute force."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from rankwise.index.multi_vector import MultiVectorIndex
from rankwise.index.sparse import SeismicIndex, exact_search, recall


def _sparse(rng, n, vocab=2000, nnz=40):
    rows = np.repeat(np.arange(n), nnz)
    cols = rng.integers(0, vocab, n * nnz)
    vals = rng.random(n * nnz).astype(np.float32)
    m = sp.csr_matrix((vals, (rows, cols)), shape=(n, vocab))
    m.sum_duplicates()
    return m


def test_exact_sparse_search_equals_the_dense_product():
    rng = np.random.default_rng(0)
    docs, queries = _sparse(rng, 3000), _sparse(rng, 20, nnz=8)
    idx, scores = exact_search(docs, queries, 100, block=700)  # several blocks, a running top-k
    dense = queries.toarray() @ docs.toarray().T
    for q in range(20):
        want = np.argsort(-dense[q], kind="stable")[:100]
        np.testing.assert_allclose(scores[q], dense[q][want], rtol=1e-5)
        assert set(idx[q]) == set(want) or np.isclose(dense[q][want[-1]], dense[q][idx[q][-1]])
    dense_docs, dense_queries = _sparse(rng, 300, vocab=50, nnz=20), _sparse(rng, 4, vocab=50, nnz=10)
    idx_d, scores_d = exact_search(dense_docs, dense_queries, 7)  # barely sparse: the dense-block path
    brute = dense_queries.toarray() @ dense_docs.toarray().T
    np.testing.assert_allclose(scores_d, np.sort(brute, axis=1)[:, ::-1][:, :7], rtol=1e-5)
    short, _ = exact_search(docs[:5], queries, 10)
    assert (short[:, 5:] == -1).all()  # fewer documents than k


def test_seismic_recall_against_exact_search():
    pytest.importorskip("seismic")
    rng = np.random.default_rng(1)
    docs, queries = _sparse(rng, 4000), _sparse(rng, 30, nnz=8)
    exact, _ = exact_search(docs, queries, 10)
    found, scores = SeismicIndex(docs).search(queries, 10)
    assert recall(found, exact) > 0.8
    dense = queries.toarray() @ docs.toarray().T
    ok = found >= 0
    np.testing.assert_allclose(
        scores[ok], np.take_along_axis(dense, np.where(ok, found, 0), 1)[ok], rtol=2e-3
    )  # its values are stored at half precision


def _tokens(rng, n, dim=16):
    out = []
    for _ in range(n):
        x = rng.standard_normal((int(rng.integers(3, 12)), dim)).astype(np.float32)
        out.append(x / np.linalg.norm(x, axis=1, keepdims=True))
    return out


def test_exhaustive_maxsim_equals_brute_force():
    rng = np.random.default_rng(2)
    docs = _tokens(rng, 300)
    index = MultiVectorIndex(docs)
    q = _tokens(rng, 1)[0]
    brute = np.array([(q @ d.T).max(axis=1).sum() for d in docs])
    idx, scores = index.exhaustive(q, 20)
    np.testing.assert_array_equal(idx, np.argsort(-brute, kind="stable")[:20])
    np.testing.assert_allclose(scores, np.sort(brute)[::-1][:20], rtol=1e-5)
    np.testing.assert_allclose(index.maxsim(q, idx[:5]), scores[:5], rtol=1e-5)


def test_token_index_gathers_candidates_for_exact_rescoring():
    rng = np.random.default_rng(3)
    docs = _tokens(rng, 1500, dim=32)
    index = MultiVectorIndex(docs, structure="ivfpq", token_k=64, nprobe=32)
    queries = [d[:4] + 0.05 * rng.standard_normal((len(d[:4]), 32)).astype(np.float32) for d in docs[:30]]
    exact = np.stack([index.exhaustive(q, 10)[0] for q in queries])
    found = np.stack([index.candidates(q, 10, xtr=False)[0] for q in queries])
    assert recall(found, exact) > 0.7
    for q, row in zip(queries, found):  # candidates are re-scored exactly
        ok = row >= 0
        np.testing.assert_allclose(index.candidates(q, 10, xtr=False)[1][ok], index.maxsim(q, row[ok]), rtol=1e-5)
    xtr = np.stack([index.candidates(q, 10, xtr=True)[0] for q in queries])
    assert (xtr[:, 0] == np.arange(30)).mean() > 0.7  # XTR's cheap scores still find each query's source

"""Learned-sparse retrieval: exact inverted-index search and an approximate Seismic index.

Exact search is the sparse product ``Q @ D.T`` (scipy's CSR kernels visit only the postings of
each query's terms), streamed over the corpus in row blocks with a running top ``k``, so the
score matrix is never whole. For large corpora ``SeismicIndex`` wraps ``pyseismic-lsr`` (Bruch,
Nardini, Rulli and Venturini, SIGIR 2024: clustered, summarised posting lists); ``recall`` reports
its recall@k against exact search on the queries given.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from rankwise.errors import RankwiseError
from rankwise.progress import task


def _merge_top(best_i, best_s, idx, scores, k):
    both_i, both_s = np.concatenate([best_i, idx], axis=1), np.concatenate([best_s, scores], axis=1)
    order = np.argsort(-both_s, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(both_i, order, 1), np.take_along_axis(both_s, order, 1)


DENSE_ABOVE = 0.02  # share of non-zeros above which both sides are multiplied as dense blocks


def exact_search(docs: sp.csr_matrix, queries: sp.csr_matrix, k: int, *, block: int = 50_000):
    """Top ``k`` rows of ``docs`` by dot product for each query row: ``(indices, scores)``, -1 where
    the corpus has fewer than ``k`` rows. Ties keep the lower row first. Vectors with more than
    ``DENSE_ABOVE`` non-zeros on both sides are multiplied in dense blocks of 512 MB."""
    n_q, vocab = queries.shape
    best_i = np.full((n_q, 0), -1, dtype=np.int64)
    best_s = np.full((n_q, 0), -np.inf, dtype=np.float32)
    dense = docs.nnz > DENSE_ABOVE * docs.shape[0] * vocab and queries.nnz > DENSE_ABOVE * n_q * vocab
    if dense:  # barely sparse vectors (an untrained SPLADE): a BLAS product beats walking the postings
        block, q = max(1, 2**27 // vocab), queries.toarray()
    docs_t = docs.T.tocsc()  # column blocks of D.T are row blocks of D
    for start in range(0, docs.shape[0], block):
        if dense:
            part = q @ docs[start : start + block].toarray().T
        else:
            part = np.asarray((queries @ docs_t[:, start : start + block]).todense(), dtype=np.float32)
        kk = min(k, part.shape[1])
        top = (
            np.argpartition(-part, kk - 1, axis=1)[:, :kk]
            if kk < part.shape[1]
            else np.tile(np.arange(part.shape[1]), (n_q, 1))
        )
        best_i, best_s = _merge_top(best_i, best_s, top + start, np.take_along_axis(part, top, 1), k)
    if best_i.shape[1] < k:
        pad = k - best_i.shape[1]
        best_i = np.pad(best_i, ((0, 0), (0, pad)), constant_values=-1)
        best_s = np.pad(best_s, ((0, 0), (0, pad)), constant_values=-np.inf)
    return best_i, best_s


class SeismicIndex:
    """An approximate inverted index over ``docs`` rows (``pip install rankwise[sparse]``)."""

    def __init__(self, docs: sp.csr_matrix, *, n_postings: int = 3500, query_cut: int = 20, heap_factor: float = 0.8):
        try:
            import seismic
        except ImportError:
            raise RankwiseError(
                "an approximate sparse index needs pyseismic-lsr: pip install 'rankwise[sparse]'"
            ) from None
        self.query_cut, self.heap_factor = query_cut, heap_factor
        self._str = seismic.get_seismic_string()
        docs = docs.tocsr().copy()
        docs.sort_indices()  # Seismic wants each row's components strictly increasing
        dataset = seismic.SeismicDataset()
        ids = [str(row) for row in range(docs.shape[0])]  # rows without terms are skipped with their id
        dataset.add_documents_by_id(
            ids, docs.indices.astype(np.int64), docs.data.astype(np.float32), docs.indptr.astype(np.int64)
        )
        self.index = seismic.SeismicIndex.build_from_dataset(dataset, n_postings=n_postings)

    def search(self, queries: sp.csr_matrix, k: int):
        queries = queries.tocsr()
        comps, vals = [], []
        for row in range(queries.shape[0]):
            lo, hi = queries.indptr[row], queries.indptr[row + 1]
            comps.append(queries.indices[lo:hi].astype(str).astype(self._str))
            vals.append(queries.data[lo:hi].astype(np.float32))
        ids = np.array([str(i) for i in range(queries.shape[0])], dtype=self._str)
        found = self.index.batch_search(ids, comps, vals, k, self.query_cut, self.heap_factor)
        idx = np.full((len(found), k), -1, dtype=np.int64)
        scores = np.full((len(found), k), -np.inf, dtype=np.float32)
        for hits in found:  # in any order: each hit names its query
            for j, (query, score, doc) in enumerate(hits[:k]):
                idx[int(query), j], scores[int(query), j] = int(doc), score
        return idx, scores


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of each query's exact top ``k`` that ``found`` holds.

    >>> recall(np.array([[1, 2, 3]]), np.array([[3, 4, 1]]))
    0.6666666666666666
    """
    k = exact.shape[1]
    return float(np.mean([len(set(a[a >= 0].tolist()) & set(b[b >= 0].tolist())) / k for a, b in zip(found, exact)]))


class SparseRetriever:
    """A sparse encoder over ``texts``: exact search, or Seismic's with ``approximate=True``
    (its recall@100 against exact search on the first queries searched kept in ``recall``)."""

    def __init__(
        self,
        model,
        ids: Sequence[str],
        texts: Sequence[str],
        *,
        approximate: bool = False,
        show_progress: bool = False,
        batch_size: int = 32,
    ) -> None:
        self.model, self.ids, self.batch_size = model, list(ids), batch_size
        with task("encode corpus", len(texts), enabled=show_progress) as advance:
            self.docs = model.encode(list(texts), "doc", batch_size=batch_size, progress=advance)
        self.approx = SeismicIndex(self.docs) if approximate else None
        self.recall: float | None = None

    def search(self, queries: Sequence[str], depth: int, *, states: bool = True):
        q = self.model.encode(list(queries), "query", batch_size=self.batch_size)
        if self.approx is None:
            idx, scores = exact_search(self.docs, q, depth)
        else:
            idx, scores = self.approx.search(q, depth)
            if self.recall is None:
                self.recall = recall(idx, exact_search(self.docs, q, depth)[0])
        return idx, scores, [q[i] for i in range(q.shape[0])] if states else []

    def score(self, state: sp.csr_matrix, rows: Sequence[int]) -> np.ndarray:
        return np.asarray((self.docs[list(rows)] @ state.T).todense(), dtype=np.float32).ravel()

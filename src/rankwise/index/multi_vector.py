"""Multi-vector retrieval: exhaustive MaxSim, and a token-level faiss index for larger corpora.

``structure="exact"`` scores every document: the query's token similarities to all document tokens
in one product, each document's maximum per query token taken with ``np.maximum.reduceat`` over
the documents' token ranges. ``structure="ivfpq"``, ColBERT's end-to-end retrieval (Khattab and
Zaharia, SIGIR 2020, section 3.6): an IVF-PQ index over all document token vectors; each query
token fetches its ``token_k`` nearest tokens, their documents are the candidates, and the
candidates are re-scored with exact MaxSim. ``xtr=True`` skips the exact re-scoring and uses
XTR's scores (Lee et al., NeurIPS 2023): only the retrieved tokens' similarities count, and a
query token that retrieved nothing of a document is imputed its ``token_k``-th similarity (an
upper bound of what it missed). ``recall`` reports the approximate search's recall@k against
exhaustive MaxSim on the first queries searched.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rankwise.errors import RankwiseError
from rankwise.index.sparse import recall
from rankwise.progress import task


def _top(scores: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-scores, kind="stable")[:k]
    idx, top = np.full(k, -1, dtype=np.int64), np.full(k, -np.inf, dtype=np.float32)
    idx[: len(order)], top[: len(order)] = rows[order], scores[order]
    return idx, top


class MultiVectorIndex:
    """Document token vectors (float32, row ``i`` of ``docs`` is a ``[n_tokens, dim]`` array)."""

    def __init__(
        self,
        docs: Sequence[np.ndarray],
        *,
        structure: str = "exact",
        token_k: int = 256,
        nprobe: int = 16,
        seed: int = 0,
    ) -> None:
        if structure not in ("exact", "ivfpq"):
            raise RankwiseError(f"structure {structure!r}: exact or ivfpq")
        self.lengths = np.array([len(d) for d in docs])
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        self.tokens = np.ascontiguousarray(np.concatenate(list(docs)), dtype=np.float32)
        self.doc_of = np.repeat(np.arange(len(docs)), self.lengths)
        self.structure, self.token_k, self.index = structure, token_k, None
        if structure == "ivfpq":
            self.index = self._ivfpq(nprobe, seed)

    def _ivfpq(self, nprobe: int, seed: int):
        import faiss

        n, dim = self.tokens.shape
        nlist = max(1, min(int(4 * np.sqrt(n)), n // 39))  # faiss wants about 39 training points a list
        index = faiss.IndexIVFPQ(faiss.IndexFlatIP(dim), dim, nlist, min(16, dim), 8, faiss.METRIC_INNER_PRODUCT)
        sample = np.random.default_rng(seed).choice(n, min(n, 100_000), replace=False)
        index.train(self.tokens[np.sort(sample)])
        index.add(self.tokens)
        index.nprobe = min(nprobe, nlist)
        return index

    def maxsim(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Exact MaxSim of one query's token vectors against documents ``rows``."""
        out = np.empty(len(rows), dtype=np.float32)
        for n, r in enumerate(rows):
            toks = self.tokens[self.starts[r] : self.starts[r] + self.lengths[r]]
            out[n] = (query @ toks.T).max(axis=1).sum() if len(toks) else 0.0
        return out

    def exhaustive(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        sims = query @ self.tokens.T  # [Tq, all tokens]
        nonempty = self.lengths > 0
        best = np.full((len(query), len(self.lengths)), 0.0, dtype=np.float32)
        best[:, nonempty] = np.maximum.reduceat(sims, self.starts[nonempty], axis=1)
        return _top(best.sum(axis=0), np.arange(len(self.lengths)), k)

    def candidates(self, query: np.ndarray, k: int, xtr: bool) -> tuple[np.ndarray, np.ndarray]:
        sims, tok = self.index.search(np.ascontiguousarray(query, dtype=np.float32), self.token_k)
        found = tok >= 0
        docs = np.unique(self.doc_of[tok[found]])
        if not xtr:
            return _top(self.maxsim(query, docs), docs, k)
        where = {d: n for n, d in enumerate(docs)}
        floor = np.where(found, sims, np.inf).min(axis=1)  # each query token's k-th similarity: the imputed value
        best = np.tile(floor[:, None], (1, len(docs))).astype(np.float32)
        seen = np.zeros_like(best, dtype=bool)
        for i, j in zip(*np.nonzero(found)):
            col = where[self.doc_of[tok[i, j]]]
            best[i, col] = sims[i, j] if not seen[i, col] else max(best[i, col], sims[i, j])
            seen[i, col] = True
        return _top(best.mean(axis=0), docs, k)


class MultiVectorRetriever:
    """A multi-vector encoder over ``texts`` (see :class:`MultiVectorIndex`)."""

    def __init__(
        self,
        model,
        ids: Sequence[str],
        texts: Sequence[str],
        *,
        structure: str = "exact",
        xtr: bool = False,
        token_k: int = 256,
        show_progress: bool = False,
        batch_size: int = 32,
    ) -> None:
        self.model, self.ids, self.xtr, self.batch_size = model, list(ids), xtr, batch_size
        with task("encode corpus", len(texts), enabled=show_progress) as advance:
            docs = model.encode(list(texts), "doc", batch_size=batch_size, progress=advance)
        self.index = MultiVectorIndex(docs, structure=structure, token_k=token_k)
        self.recall: float | None = None

    def search(self, queries: Sequence[str], depth: int, *, states: bool = True):
        q = self.model.encode(list(queries), "query", batch_size=self.batch_size)
        if self.index.structure == "exact":
            rows = [self.index.exhaustive(x, depth) for x in q]
        else:
            rows = [self.index.candidates(x, depth, self.xtr) for x in q]
            if self.recall is None:
                exact = np.stack([self.index.exhaustive(x, depth)[0] for x in q])
                self.recall = recall(np.stack([r[0] for r in rows]), exact)
        return np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows]), q if states else []

    def score(self, state: np.ndarray, rows: Sequence[int]) -> np.ndarray:
        return self.index.maxsim(state, np.asarray(rows))

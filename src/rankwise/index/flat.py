"""Exact inner-product search over a faiss-cpu flat index, queried in batches."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import faiss
import numpy as np

from rankwise.errors import RankwiseError


class FlatIndex:
    """Exact maximum inner product search (cosine when the embeddings are L2-normalised)."""

    def __init__(self, embeddings: np.ndarray, ids: Sequence[str]) -> None:
        emb = np.ascontiguousarray(embeddings, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] != len(ids):
            raise RankwiseError(f"index: {emb.shape[0]} embeddings for {len(ids)} ids")
        self.ids = list(ids)
        self.index = faiss.IndexFlatIP(emb.shape[1])
        self.index.add(emb)

    def __len__(self) -> int:
        return self.index.ntotal

    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        batch_size: int = 1024,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (row indices, scores) per query, best first; k is capped at the index size."""
        q = np.ascontiguousarray(queries, dtype=np.float32)
        k = min(k, len(self))
        idx = np.empty((len(q), k), dtype=np.int64)
        scores = np.empty((len(q), k), dtype=np.float32)
        for start in range(0, len(q), batch_size):
            s, i = self.index.search(q[start : start + batch_size], k)
            scores[start : start + len(s)], idx[start : start + len(s)] = s, i
            if progress:
                progress(len(s))
        return idx, scores

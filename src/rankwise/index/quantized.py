"""Exact search over smaller embeddings: a Matryoshka prefix of the first ``dims`` dimensions
(normalised again for a cosine model), stored as fp32, int8 or binary codes.

* ``fp32``: 4 bytes a dimension; score q . d.
* ``int8``: 1 byte a dimension; per-dimension symmetric scales s_j = max_i |d_ij| / 127 over the
  corpus (queries use the same scales, clipped), codes round(x / s); score (q_c s) . (d_c s).
* ``binary``: 1 bit a dimension, sign(x) packed 8 to a byte; score dims - 2 hamming(q, d) (the dot
  product of the +-1 vectors), computed on the packed bits.
* ``binary-itq``: the same bits after iterative quantisation (Gong & Lazebnik, CVPR 2011; faiss's
  ``ITQTransform``): the corpus mean subtracted, then an orthogonal rotation fitted to the corpus so
  that sign codes lose the least, applied to queries too. Plain signs waste bits when a model piles
  its variance into a few axes (a principal-axes rotation does) or shares a mean direction; the
  rotation and mean (d^2 + d floats) count in the index bytes.

Every search is exact over the stored codes (brute force), so the metrics measure what the
representation loses, not an approximate index's misses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rankwise.errors import ConfigError

PRECISIONS = ("fp32", "int8", "binary", "binary-itq")


def prefix(x: np.ndarray, dims: int, normalize: bool) -> np.ndarray:
    """The first ``dims`` dimensions, normalised again when the model's embeddings are unit vectors."""
    out = np.ascontiguousarray(x[:, :dims], dtype=np.float32)
    if normalize:
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out


@dataclass
class QuantizedIndex:
    """Corpus codes at one precision; :meth:`search` scores queries exactly against them."""

    precision: str
    dims: int
    codes: np.ndarray
    scale: np.ndarray | None = None
    itq: object | None = None  # faiss.ITQTransform fitted on the corpus (binary-itq)

    @classmethod
    def build(cls, docs: np.ndarray, precision: str) -> QuantizedIndex:
        if precision not in PRECISIONS:
            raise ConfigError(f"precision={precision}: choose one of {', '.join(PRECISIONS)}", param="precision")
        dims = docs.shape[1]
        if precision == "fp32":
            return cls(precision, dims, docs.astype(np.float32))
        if precision == "int8":
            scale = np.maximum(np.abs(docs).max(axis=0), 1e-12) / 127
            return cls(
                precision, dims, np.round(docs / scale).clip(-127, 127).astype(np.int8), scale.astype(np.float32)
            )
        if precision == "binary-itq":
            import faiss

            itq = faiss.ITQTransform(dims, dims, False)
            itq.train(np.ascontiguousarray(docs, dtype=np.float32))
            return cls(precision, dims, np.packbits(itq.apply(docs) >= 0, axis=1), itq=itq)
        return cls(precision, dims, np.packbits(docs >= 0, axis=1))

    @property
    def nbytes(self) -> int:
        """Bytes the stored corpus takes (codes, scales, and ITQ's rotation and mean)."""
        extra = self.scale.nbytes if self.scale is not None else 0
        if self.itq is not None:
            extra += 4 * (self.dims * self.dims + self.dims)  # the rotation and the mean, float32
        return int(self.codes.nbytes + extra)

    def scores(self, queries: np.ndarray) -> np.ndarray:
        """[queries, documents] scores of the stored codes."""
        if self.precision == "fp32":
            return queries.astype(np.float32) @ self.codes.T
        if self.precision == "int8":
            q = np.round(queries / self.scale).clip(-127, 127) * self.scale
            return q.astype(np.float32) @ (self.codes.astype(np.float32) * self.scale).T
        if self.itq is not None:
            queries = self.itq.apply(np.ascontiguousarray(queries, dtype=np.float32))
        packed = np.packbits(queries >= 0, axis=1)
        hamming = np.bitwise_count(packed[:, None, :] ^ self.codes[None, :, :]).sum(axis=2, dtype=np.int64)
        return (self.dims - 2 * hamming).astype(np.float32)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` rows and scores per query (ties: the lower row first)."""
        s = self.scores(queries)
        k = min(k, s.shape[1])
        top = np.argpartition(-s, k - 1, axis=1)[:, :k]
        part = np.take_along_axis(s, top, axis=1)
        order = np.lexsort((top, -part), axis=1)
        rows = np.take_along_axis(top, order, axis=1)
        return rows, np.take_along_axis(s, rows, axis=1)

"""Approximate nearest-neighbour indexes (faiss) for corpora where exact search is too slow:
HNSW and IVF-PQ, chosen by name or by corpus size, built from memory-mapped embeddings in
batches (bounded memory), with their recall@k against exact search measured when built.

``structure="auto"``: exact (flat) up to 100k documents, HNSW up to 5M, IVF-PQ beyond (its codes
take ``m`` bytes a vector, where HNSW keeps every vector in memory).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from rankwise.errors import RankwiseError

STRUCTURES = ("flat", "hnsw", "ivfpq")


def auto_structure(n: int) -> str:
    return "flat" if n <= 100_000 else "hnsw" if n <= 5_000_000 else "ivfpq"


@dataclass
class ANNIndex:
    """A faiss inner-product index over ``n`` vectors; ``search`` returns ``(rows, scores)``."""

    structure: str
    index: object
    ids: list[str] | None = None
    build_seconds: float = 0.0
    recall: dict[str, float] = field(default_factory=dict)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, rows = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return rows, scores

    def memory_bytes(self) -> int:
        import faiss

        return int(faiss.serialize_index(self.index).nbytes)


def build_index(
    embeddings: np.ndarray,
    structure: str = "auto",
    *,
    ids: Sequence[str] | None = None,
    batch: int = 65_536,
    hnsw_m: int = 32,
    ef_construction: int = 80,
    ef_search: int = 128,
    nlist: int | None = None,
    pq_m: int | None = None,
    nprobe: int = 32,
    train_size: int = 100_000,
    seed: int = 0,
) -> ANNIndex:
    """An index over ``embeddings`` (an array or a ``numpy.memmap``; rows are added ``batch`` at a
    time, so only the index itself lives in memory). Inner product (cosine for normalised vectors)."""
    import faiss

    n, dim = embeddings.shape
    structure = auto_structure(n) if structure == "auto" else structure
    if structure not in STRUCTURES:
        raise RankwiseError(f"index {structure!r}: expected auto, {', '.join(STRUCTURES)}")
    t0 = time.perf_counter()
    if structure == "flat":
        index = faiss.IndexFlatIP(dim)
    elif structure == "hnsw":
        index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        index.hnsw.efSearch = ef_search
    else:
        nlist = nlist or max(16, int(4 * np.sqrt(n)))
        pq_m = pq_m or next(m for m in (dim // 2, dim // 4, dim // 8, 8, 4, 2, 1) if m >= 1 and dim % m == 0)
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFPQ(quantizer, dim, nlist, pq_m, 8, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(seed)
        sample = np.sort(rng.choice(n, size=min(n, max(train_size, 39 * nlist)), replace=False))
        index.train(np.ascontiguousarray(embeddings[sample], dtype=np.float32))
        index.nprobe = nprobe
    for start in range(0, n, batch):
        index.add(np.ascontiguousarray(embeddings[start : start + batch], dtype=np.float32))
    return ANNIndex(structure, index, list(ids) if ids is not None else None, time.perf_counter() - t0)


def exact_search(embeddings: np.ndarray, queries: np.ndarray, k: int, *, batch: int = 16_384) -> np.ndarray:
    """Exact top-``k`` rows by inner product, streaming over the (memory-mapped) embeddings."""
    q = np.ascontiguousarray(queries, dtype=np.float32)
    best_s = np.full((len(q), k), -np.inf, dtype=np.float32)
    best_r = np.full((len(q), k), -1, dtype=np.int64)
    for start in range(0, len(embeddings), batch):
        block = np.asarray(embeddings[start : start + batch], dtype=np.float32)
        s = q @ block.T
        top = np.argpartition(-s, min(k, s.shape[1]) - 1, axis=1)[:, :k]
        cand_s = np.concatenate([best_s, np.take_along_axis(s, top, 1)], axis=1)
        cand_r = np.concatenate([best_r, top + start], axis=1)
        keep = np.argsort(-cand_s, axis=1, kind="stable")[:, :k]
        best_s, best_r = np.take_along_axis(cand_s, keep, 1), np.take_along_axis(cand_r, keep, 1)
    return best_r


def recall_vs_exact(index: ANNIndex, embeddings: np.ndarray, queries: np.ndarray, k: int = 10) -> float:
    """Share of the exact top-``k`` the index returns (mean over ``queries``)."""
    exact = exact_search(embeddings, queries, k)
    got, _ = index.search(queries, k)
    hits = [len(set(a.tolist()) & set(b.tolist())) / k for a, b in zip(exact, got)]
    value = float(np.mean(hits))
    index.recall[f"recall@{k}"] = value
    return value


def tune_recall(
    index: ANNIndex,
    embeddings: np.ndarray,
    queries: np.ndarray,
    *,
    target: float = 0.95,
    k: int = 10,
    limit: int = 4096,
) -> float:
    """Raise the search effort (HNSW's efSearch, IVF's nprobe) until recall@``k`` against exact
    search reaches ``target`` on ``queries`` (or the effort reaches ``limit``); the recall reached."""
    exact = exact_search(embeddings, queries, k)

    def recall() -> float:
        got, _ = index.search(queries, k)
        return float(np.mean([len(set(a.tolist()) & set(b.tolist())) / k for a, b in zip(exact, got)]))

    value = recall()
    if index.structure == "hnsw":
        while value < target and index.index.hnsw.efSearch < limit:
            index.index.hnsw.efSearch *= 2
            value = recall()
        index.recall["ef_search"] = float(index.index.hnsw.efSearch)
    elif index.structure == "ivfpq":
        while value < target and index.index.nprobe < min(limit, index.index.nlist):
            index.index.nprobe = min(index.index.nprobe * 2, index.index.nlist)
            value = recall()
        index.recall["nprobe"] = float(index.index.nprobe)
    index.recall[f"recall@{k}"] = value
    return value

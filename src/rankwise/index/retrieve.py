"""Retrieval over a dataset's corpus, the one place evaluation and mining search: dense (a
:class:`~rankwise.models.BiEncoder` over an exact faiss index) or BM25 (bm25s).

A retriever answers ``search(queries, depth)`` with row indices, scores and a per-query state (the
query embedding, or BM25's score vector; ``states=False`` skips it) from which ``score(state, rows)`` gives the exact score of any document (mining needs the positives'
scores even when they rank below the window).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rankwise.data.beir import Dataset
from rankwise.data.trec import Run
from rankwise.index.bm25 import BM25Index
from rankwise.index.flat import FlatIndex
from rankwise.io import atomic_path, cache_dir
from rankwise.progress import task


class Retriever(Protocol):
    ids: list[str]

    def search(
        self, queries: Sequence[str], depth: int, *, states: bool = True
    ) -> tuple[np.ndarray, np.ndarray, list[Any]]: ...

    def score(self, state: Any, rows: Sequence[int]) -> np.ndarray: ...


def embeddings_key(model, texts: Sequence[str]) -> str:
    """What corpus embeddings depend on: the model's weights and settings, the doc max length and the texts."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.backbone.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    projection = getattr(model, "projection", None)  # changes every embedding (none: keys as before)
    for name, tensor in sorted(projection.state_dict().items()) if projection is not None else []:
        h.update(f"projection.{name}".encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    h.update(f"{model.config.pooling}|{model.config.normalize}|{model.config.doc_max_length}".encode())
    if getattr(model.config, "doc_prompt", ""):  # a prompt changes every embedding (no prompt: keys as before)
        h.update(f"|prompt:{model.config.doc_prompt}".encode())
    for text in texts:
        h.update(hashlib.sha256(text.encode()).digest())
    return h.hexdigest()[:32]


def _cache_path(model, texts: Sequence[str]) -> Path:
    return cache_dir() / "embeddings" / f"{embeddings_key(model, texts)}.npy"


def embeddings_in_cache(model, texts: Sequence[str]) -> np.ndarray | None:
    """The corpus embeddings :func:`cached_embeddings` kept for this model, its settings and these
    texts, or None (nothing is encoded)."""
    path = _cache_path(model, texts)
    return np.load(path) if path.is_file() else None


def cached_embeddings(model, texts: Sequence[str], *, batch_size: int = 128, show_progress: bool = False) -> np.ndarray:
    """Corpus embeddings from the cache (``cache_dir()/embeddings``) when this model, its settings and
    these texts were encoded before, e.g. the starting model of a training run; else encoded and kept."""
    path = _cache_path(model, texts)  # the key hashes every weight and text: once
    if path.is_file():
        return np.load(path)
    with task("encode corpus", len(texts), enabled=show_progress) as advance:
        emb = model.encode(list(texts), "doc", batch_size=batch_size, progress=advance)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, emb)
    return emb


class DenseRetriever:
    """``model`` over ``texts``, encoded once (or given as ``embeddings``, e.g. a cached index)."""

    def __init__(
        self,
        model,
        ids: Sequence[str],
        texts: Sequence[str],
        *,
        embeddings: np.ndarray | None = None,
        batch_size: int = 128,
        show_progress: bool = False,
    ) -> None:
        self.model, self.ids, self.batch_size = model, list(ids), batch_size
        if embeddings is None:
            with task("encode corpus", len(texts), enabled=show_progress) as advance:
                embeddings = model.encode(list(texts), "doc", batch_size=batch_size, progress=advance)
        self.embeddings = embeddings
        self.index = FlatIndex(embeddings, self.ids)

    def search(
        self, queries: Sequence[str], depth: int, *, states: bool = True
    ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        q = self.model.encode(list(queries), "query", batch_size=self.batch_size)
        idx, scores = self.index.search(q, depth)
        return idx, scores, list(q)

    def score(self, state: np.ndarray, rows: Sequence[int]) -> np.ndarray:
        return self.embeddings[list(rows)] @ state


class BM25Retriever:
    """BM25 over ``texts``; ``code=True`` splits identifiers (``read_file`` -> ``read file``)."""

    def __init__(self, ids: Sequence[str], texts: Sequence[str], *, code: bool = False) -> None:
        self.ids = list(ids)
        self.bm25 = BM25Index(list(texts), self.ids, code=code)

    def search(
        self, queries: Sequence[str], depth: int, *, states: bool = True
    ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        idx, scores = self.bm25.search(list(queries), depth)
        return idx, scores, [self.bm25.score_all(q) for q in queries] if states else []

    def score(self, state: np.ndarray, rows: Sequence[int]) -> np.ndarray:
        return np.asarray(state)[list(rows)]


def corpus_texts(dataset: Dataset) -> tuple[list[str], list[str]]:
    ids = list(dataset.corpus)
    return ids, [dataset.corpus[d].full_text for d in ids]


def search_run(
    retriever: Retriever, dataset: Dataset, k: int = 100, *, batch: int = 1024, show_progress: bool = False
) -> Run:
    """The top ``k`` documents of each query of the split: ``{qid: {docid: score}}``."""
    queries = dataset.split_queries
    qids, texts = list(queries), list(queries.values())
    run: Run = {}
    with task("search", len(qids), enabled=show_progress) as advance:
        for start in range(0, len(qids), batch):
            idx, scores, _ = retriever.search(texts[start : start + batch], k, states=False)
            for qid, row_i, row_s in zip(qids[start : start + batch], idx, scores):
                run[qid] = {retriever.ids[int(j)]: float(s) for j, s in zip(row_i, row_s) if j >= 0}
            advance(len(idx))
    return run


def dense_run(
    model,
    dataset: Dataset,
    k: int = 100,
    *,
    batch_size: int = 64,
    show_progress: bool = True,
    cache: bool = False,
    embeddings: np.ndarray | None = None,
) -> Run:
    """Encode the corpus and the split's queries, search exactly, keep the top ``k``. ``cache``: reuse
    (and keep) the corpus embeddings of the same model, settings and texts (:func:`cached_embeddings`);
    ``embeddings``: the corpus rows already encoded (e.g. an on-disk store built with Ray)."""
    ids, texts = corpus_texts(dataset)
    emb = embeddings
    if emb is None and cache:
        emb = cached_embeddings(model, texts, batch_size=batch_size, show_progress=show_progress)
    retriever = DenseRetriever(model, ids, texts, embeddings=emb, batch_size=batch_size, show_progress=show_progress)
    return search_run(retriever, dataset, k, show_progress=show_progress)


def bm25_run(dataset: Dataset, k: int = 100, *, code: bool = False, show_progress: bool = True) -> Run:
    ids, texts = corpus_texts(dataset)
    return search_run(BM25Retriever(ids, texts, code=code), dataset, k, show_progress=show_progress)

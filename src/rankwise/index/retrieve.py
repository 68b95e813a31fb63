"""Retrieval over a dataset: dense (BiEncoder + FlatIndex) or BM25, returning a run."""

from __future__ import annotations

from rankwise.data.beir import Dataset
from rankwise.index.bm25 import BM25Index
from rankwise.index.flat import FlatIndex
from rankwise.models import BiEncoder
from rankwise.progress import task


def dense_run(model: BiEncoder, dataset: Dataset, k: int = 100, *, batch_size: int = 64, show_progress: bool = True) -> dict[str, dict[str, float]]:
    """Encode the corpus and the split's queries, search exactly, keep the top ``k``."""
    ids = list(dataset.corpus)
    texts = [dataset.corpus[d].full_text for d in ids]
    with task("encode corpus", len(texts), enabled=show_progress) as advance:
        doc_emb = model.encode(texts, "doc", batch_size=batch_size, progress=advance)
    queries = dataset.split_queries
    with task("encode queries", len(queries), enabled=show_progress) as advance:
        q_emb = model.encode(list(queries.values()), "query", batch_size=batch_size, progress=advance)
    index = FlatIndex(doc_emb, ids)
    with task("search", len(queries), enabled=show_progress) as advance:
        return index.search_run(list(queries), q_emb, k, progress=advance)


def bm25_run(dataset: Dataset, k: int = 100, *, code: bool = False, show_progress: bool = True) -> dict[str, dict[str, float]]:
    ids = list(dataset.corpus)
    queries = dataset.split_queries
    with task("bm25 index + search", 2, enabled=show_progress) as advance:
        index = BM25Index([dataset.corpus[d].full_text for d in ids], ids, code=code)
        advance()
        run = index.search_run(list(queries), list(queries.values()), k)
        advance()
    return run

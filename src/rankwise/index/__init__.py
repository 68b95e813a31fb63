"""Search indexes: exact dense search (faiss) and BM25 (bm25s)."""

from rankwise.index.bm25 import BM25Index
from rankwise.index.flat import FlatIndex

__all__ = ["FlatIndex", "BM25Index"]

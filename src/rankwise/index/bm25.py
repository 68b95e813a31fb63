"""BM25 retrieval with bm25s (English stopwords), for baselines and negative mining."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import bm25s
import numpy as np

# bm25s sets its own logger to DEBUG on import, which floods the terminal; keep warnings only.
logging.getLogger("bm25s").setLevel(logging.WARNING)

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def split_identifiers(text: str) -> str:
    """``read_file``/``readFile`` -> ``read file``, so natural-language queries match code tokens."""
    return _CAMEL.sub(" ", text).replace("_", " ")


class BM25Index:
    def __init__(
        self,
        texts: Sequence[str],
        ids: Sequence[str],
        *,
        k1: float = 1.5,
        b: float = 0.75,
        code: bool = False,
        show_progress: bool = False,
    ) -> None:
        self.ids = list(ids)
        self.code = code
        self.show_progress = show_progress
        self.retriever = bm25s.BM25(k1=k1, b=b)
        self.retriever.index(self._tokenize(texts), show_progress=show_progress)

    def _tokenize(self, texts: Sequence[str]):
        texts = [split_identifiers(t) for t in texts] if self.code else list(texts)
        return bm25s.tokenize(texts, stopwords="en", show_progress=self.show_progress)

    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (row indices, scores) per query, best first; -1 where fewer documents match."""
        k = min(k, len(self.ids))
        docs, scores = self.retriever.retrieve(
            self._tokenize(queries), k=k, show_progress=self.show_progress, n_threads=1
        )
        docs, scores = np.asarray(docs).astype(np.int64), np.asarray(scores, dtype=np.float32)
        docs[scores <= 0] = -1  # bm25s pads with score-0 documents that share no term
        return docs, scores

    def score_all(self, query: str) -> np.ndarray:
        """BM25 score of every document for ``query`` (e.g. the positives' exact scores)."""
        text = split_identifiers(query) if self.code else query
        tokens = bm25s.tokenize([text], stopwords="en", return_ids=False, show_progress=False)[0]
        vocab = self.retriever.vocab_dict
        known = [t for t in tokens if t in vocab]
        return self.retriever.get_scores(known) if known else np.zeros(len(self.ids), dtype=np.float32)

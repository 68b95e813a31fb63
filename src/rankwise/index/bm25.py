"""BM25 retrieval with bm25s (English stopwords), for baselines and negative mining."""

from __future__ import annotations

import logging
import re
from collections import Counter
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
        self.code, self.k1, self.b = code, k1, b
        self.show_progress = show_progress
        self.retriever = bm25s.BM25(k1=k1, b=b)  # Lucene's BM25 (bm25s' default method)
        tokens = self._tokenize(texts)
        self.retriever.index(tokens, show_progress=show_progress)
        # the corpus statistics, for texts outside it (score_texts)
        self._vocab = tokens.vocab
        self._avgdl = float(np.mean([len(t) for t in tokens.ids])) if tokens.ids else 0.0
        seen = [np.unique(np.asarray(t, dtype=np.int64)) for t in tokens.ids]
        self._df = np.bincount(np.concatenate(seen) if seen else np.zeros(0, np.int64), minlength=len(self._vocab))

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

    def _words(self, text: str) -> list[str]:
        text = split_identifiers(text) if self.code else text
        return bm25s.tokenize([text], stopwords="en", return_ids=False, show_progress=False)[0]

    def score_all(self, query: str) -> np.ndarray:
        """BM25 score of every document for ``query`` (e.g. the positives' exact scores)."""
        vocab = self.retriever.vocab_dict
        known = [t for t in self._words(query) if t in vocab]
        return self.retriever.get_scores(known) if known else np.zeros(len(self.ids), dtype=np.float32)

    def score_texts(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """BM25 of ``query`` for any ``texts`` under this corpus's statistics (N, document
        frequencies, mean length): a corpus document scores as in :meth:`score_all`, any other text
        as one more document that leaves the statistics unchanged (e.g. an inverse-cloze positive,
        its document less the query sentence). Lucene's formula, as bm25s indexes:
        sum over query terms t of log(1 + (N - df_t + 0.5) / (df_t + 0.5)) * tf / (tf + k1 (1 - b + b |d| / avgdl))."""
        n = len(self.ids)
        terms = [self._vocab[t] for t in self._words(query) if t in self._vocab]
        idf = {t: np.log1p((n - self._df[t] + 0.5) / (self._df[t] + 0.5)) for t in set(terms)}
        out = np.zeros(len(texts), dtype=np.float32)
        for i, text in enumerate(texts):
            words = self._words(text)
            tf = Counter(self._vocab[w] for w in words if w in self._vocab)
            norm = self.k1 * (1 - self.b + self.b * len(words) / max(self._avgdl, 1e-9))
            out[i] = sum(idf[t] * tf[t] / (tf[t] + norm) for t in terms if tf[t])
        return out

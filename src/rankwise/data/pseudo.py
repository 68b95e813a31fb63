"""Pseudo-queries from a corpus alone, for label-free adaptation (no judgements are read).

* ``crop`` — independent cropping (Izacard et al., "Unsupervised Dense Information Retrieval with
  Contrastive Learning" (Contriever), TMLR 2022): a random span of ``min_words`` to ``max_words``
  words of a document is a query for that document.
* ``ict`` — the inverse cloze task (Lee, Chang and Toutanova, ACL 2019): one sentence of a
  document is the query, and the document without that sentence is its positive.

Each document gives ``per_doc`` queries, drawn from a generator seeded by ``seed`` and the
document's position, so the same settings give the same examples. :func:`consistent` keeps the
pseudo-queries whose own document the current retriever ranks within its top ``k`` (the
round-trip filter of synthetic-query work, e.g. GPL and Promptagator).

>>> from rankwise.data.beir import Document
>>> ex = crop_queries({"d": Document("one two three four five six seven eight")}, min_words=3, max_words=3)
>>> len(ex[0].query.split()), ex[0].positives[0][0]
(3, 'd')
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

from rankwise.data.beir import Document
from rankwise.data.examples import TrainExample
from rankwise.errors import ConfigError

METHODS = ("crop", "ict")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def crop_queries(
    corpus: Mapping[str, Document],
    *,
    method: str = "crop",
    per_doc: int = 1,
    min_words: int = 4,
    max_words: int = 16,
    seed: int = 42,
) -> list[TrainExample]:
    """Pseudo (query, positive) examples for every document long enough to give one."""
    if method not in METHODS:
        raise ConfigError(f"method={method}: choose one of {', '.join(METHODS)}", param="method")
    if not 1 <= min_words <= max_words:
        raise ConfigError(f"min_words={min_words}, max_words={max_words}: need 1 <= min <= max", param="min_words")
    out: list[TrainExample] = []
    for i, (did, doc) in enumerate(corpus.items()):
        rng = np.random.default_rng([seed, i])
        for j in range(per_doc):
            ex = _crop(did, doc, rng, min_words, max_words) if method == "crop" else _ict(did, doc, rng, j)
            if ex is not None:
                out.append(ex)
    return out


def _crop(did: str, doc: Document, rng, min_words: int, max_words: int) -> TrainExample | None:
    words = doc.full_text.split()
    if len(words) < min_words + 1:
        return None
    n = int(rng.integers(min_words, min(max_words, len(words) - 1) + 1))
    start = int(rng.integers(0, len(words) - n + 1))
    return TrainExample(" ".join(words[start : start + n]), [(did, doc.full_text)], query_id=f"crop:{did}:{start}")


def _ict(did: str, doc: Document, rng, j: int) -> TrainExample | None:
    sentences = [s for s in _SENTENCE.split(doc.full_text) if s.strip()]
    if len(sentences) < 2:
        return None
    k = int(rng.integers(len(sentences)))
    rest = " ".join(sentences[:k] + sentences[k + 1 :])
    return TrainExample(sentences[k], [(f"ict:{did}:{k}", rest)], query_id=f"ict:{did}:{j}")


def consistent(examples: list[TrainExample], model, corpus: Mapping[str, Document], k: int = 10) -> list[TrainExample]:
    """The examples whose positive document the dual encoder ``model`` retrieves in its top ``k``
    (for ``ict``, the source document, whose id follows ``ict:``)."""
    from rankwise.index.retrieve import DenseRetriever

    ids = list(corpus)
    retriever = DenseRetriever(model, ids, [corpus[d].full_text for d in ids])
    rows, _, _ = retriever.search([ex.query for ex in examples], k, states=False)
    keep = []
    for ex, row in zip(examples, rows):
        source = ex.positives[0][0].split(":")[1] if ex.positives[0][0].startswith("ict:") else ex.positives[0][0]
        if source in {ids[int(r)] for r in row if r >= 0}:
            keep.append(ex)
    return keep

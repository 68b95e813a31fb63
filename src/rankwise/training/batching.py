"""Turn training examples into the one loss shape: an in-batch score matrix with its labels.

This is where training examples become the label side of ``(scores, labels, mask)``. A dual
encoder's batch (:class:`InBatch`) scores each query against every document of the batch (its
positive, its hard negatives, every other query's documents); a cross-encoder's
(:class:`ListBatch`) scores each query's own candidate list. A document that appears several times in the batch is encoded once,
and is labelled positive for every query that has it among its positives, so a shared
positive is never treated as another query's negative.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from rankwise.batch import hard_negatives
from rankwise.data.examples import TrainExample


@dataclass
class InBatch:
    queries: list[str]
    doc_ids: list[str]
    docs: list[str]
    labels: torch.Tensor  # [n_queries, n_docs], 1.0 where the document is a positive of the query
    positive: list[int]  # column of each query's sampled positive
    hard: list[
        list[tuple[int, int]]
    ]  # per query: (column, index into example.negatives) of its own sampled hard negatives
    positive_index: list[int] = field(default_factory=list)  # which of its example's positives each query drew
    mask: torch.Tensor | None = None  # every query is scored against every document


def build_inbatch(
    examples: Sequence[TrainExample],
    rng: np.random.Generator,
    n_negatives: int = 0,
    extra: Sequence[Sequence[tuple[str, str]]] | None = None,
    choose: Callable[[int, TrainExample, np.random.Generator], Sequence[int]] | None = None,
    by_text: bool = False,
) -> InBatch:
    """One sampled positive and up to ``n_negatives`` sampled hard negatives per example, plus
    ``extra[i]`` documents for example i (e.g. STAR's random negatives). ``choose`` picks which
    of an example's negatives to use (e.g. TAS-Balanced's margin bins); default: uniform.
    ``by_text``: documents with identical text are one document (a corpus that repeats a text
    under two ids would otherwise make one a negative of the other's query)."""
    doc_index: dict[str, int] = {}
    docs: list[str] = []
    ids: list[str] = []

    def key(did: str, text: str) -> str:
        return text if by_text else did

    def add(did: str, text: str) -> int:
        k = key(did, text)
        if k not in doc_index:
            doc_index[k] = len(docs)
            docs.append(text)
            ids.append(did)
        return doc_index[k]

    positive, hard, drawn = [], [], []
    for i, ex in enumerate(examples):
        drawn.append(int(rng.integers(len(ex.positives))))
        positive.append(add(*ex.positives[drawn[-1]]))
        own = []
        if n_negatives and ex.negatives:
            take = min(n_negatives, len(ex.negatives))
            picks = choose(take, ex, rng) if choose else rng.choice(len(ex.negatives), size=take, replace=False)
            for j in picks:
                own.append((add(*ex.negatives[int(j)]), int(j)))
        hard.append(own)
        for did, text in extra[i] if extra else ():
            add(did, text)
    labels = torch.zeros(len(examples), len(docs))
    for i, ex in enumerate(examples):
        for did, text in ex.positives:
            j = doc_index.get(key(did, text))
            if j is not None:
                labels[i, j] = 1.0
    return InBatch([ex.query for ex in examples], ids, docs, labels, positive, hard, drawn)


@dataclass
class ListBatch:
    """Candidate lists, one per query (a cross-encoder's batch): ``docs[i][c]`` is query i's candidate
    in column c; ``labels`` and ``mask`` are [n_queries, list length], padded where a list is short."""

    queries: list[str]
    doc_ids: list[list[str]]
    docs: list[list[str]]
    labels: torch.Tensor
    mask: torch.Tensor
    positive: list[int]  # column of each query's sampled positive (0)
    hard: list[list[tuple[int, int]]]  # per query: (column, index into example.negatives)
    positive_index: list[int]

    def pairs(self) -> list[tuple[str, str]]:
        """Every (query, candidate) pair, row by row: the order the scores come back in."""
        return [(q, d) for q, docs in zip(self.queries, self.docs) for d in docs]


def build_lists(
    examples: Sequence[TrainExample],
    rng: np.random.Generator,
    list_size: int,
    *,
    n_hard: int | None = None,
    extra: Sequence[Sequence[tuple[str, str]]] | None = None,
    choose: Callable[[int, TrainExample, np.random.Generator], Sequence[int]] | None = None,
    by_text: bool = False,
) -> ListBatch:
    """Each query's list: one sampled positive, then up to ``n_hard`` (default ``list_size - 1``) of
    its hard negatives (``choose`` picks them; default uniform), then ``extra[i]`` documents (e.g.
    STAR's random ones), then the other queries' sampled positives (in-batch negatives) until the
    list is full: a mix of hard and easy negatives when ``n_hard < list_size - 1``.
    A candidate that is one of the query's own positives is labelled 1 wherever it comes from."""
    if list_size < 2:
        raise ValueError("list_size must be >= 2 (a positive and at least one negative)")
    drawn = [int(rng.integers(len(ex.positives))) for ex in examples]
    sampled = [ex.positives[k] for ex, k in zip(examples, drawn)]
    ids, docs, labels, hard = [], [], [], []

    def key(did: str, text: str) -> str:
        return text if by_text else did

    for i, ex in enumerate(examples):
        own = {key(d, t) for d, t in ex.positives}
        row: dict[str, tuple[str, str]] = {key(*sampled[i]): sampled[i]}  # insertion-ordered, one per document
        row_hard: list[tuple[int, int]] = []
        if ex.negatives:
            take = min(list_size - 1 if n_hard is None else n_hard, len(ex.negatives))
            picks = choose(take, ex, rng) if choose else rng.choice(len(ex.negatives), size=take, replace=False)
            for j in picks:
                neg = ex.negatives[int(j)]
                if len(row) < list_size and key(*neg) not in row:
                    row_hard.append((len(row), int(j)))
                    row[key(*neg)] = neg
        others = [sampled[int(j)] for j in rng.permutation(len(examples)) if j != i]
        for doc in [*(extra[i] if extra else ()), *others]:
            if len(row) < list_size:
                row.setdefault(key(*doc), doc)
        ids.append([d for d, _ in row.values()])
        docs.append([t for _, t in row.values()])
        labels.append([1.0 if k in own else 0.0 for k in row])
        hard.append(row_hard)
    label_t, mask = pad_labels(labels)
    return ListBatch([ex.query for ex in examples], ids, docs, label_t, mask, [0] * len(examples), hard, drawn)


def pad_labels(rows: Sequence[Sequence[float]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Ragged grade lists to ``labels`` and ``mask``, ``[len(rows), longest]``."""
    n = max((len(r) for r in rows), default=0)
    labels = torch.zeros(len(rows), n)
    mask = torch.zeros(len(rows), n, dtype=torch.bool)
    for i, row in enumerate(rows):
        labels[i, : len(row)] = torch.as_tensor(list(row), dtype=torch.float32)
        mask[i, : len(row)] = True
    return labels, mask


def teacher_matrix(batch: InBatch | ListBatch, examples: Sequence[TrainExample]) -> tuple[torch.Tensor, torch.Tensor]:
    """The teacher's scores where it scored the pair: each query's sampled positive and its own
    hard negatives (the teacher never saw the other queries' documents). Returns
    ``(teacher_scores, mask)``, both [n_queries, n_docs]; distillation losses see only the masked
    entries, so Margin-MSE is the paper's (q, d+, d-) margins and KL a softmax over the query's
    own candidates. A query without teacher scores has an empty row (no loss)."""
    t = torch.zeros(batch.labels.shape)
    mask = torch.zeros(batch.labels.shape, dtype=torch.bool)
    for i, ex in enumerate(examples):
        if ex.scores is None or not hard_negatives(batch)[i]:
            continue
        c = batch.positive[i]
        t[i, c], mask[i, c] = ex.scores.positives[batch.positive_index[i]], True
        for c, j in batch.hard[i]:
            t[i, c], mask[i, c] = ex.scores.negatives[j], True
    return t, mask


def pad_lists(
    scores: Sequence[torch.Tensor], labels: Sequence[Sequence[float]]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ragged candidate lists (cross-encoder reranking, LETOR feature lists, LLM preference
    lists) to the loss shape: ``(scores, labels, mask)`` padded to the longest list.

    ``scores[i]`` is a 1-D tensor (gradients flow through), ``labels[i]`` its grades."""
    if len(scores) != len(labels):
        raise ValueError(f"{len(scores)} score lists for {len(labels)} label lists")
    for i, (s, y) in enumerate(zip(scores, labels)):
        if s.ndim != 1 or len(s) != len(y):
            raise ValueError(f"list {i}: {tuple(s.shape)} scores for {len(y)} labels")
    ref = scores[0] if scores else torch.zeros(0)
    lab, mask = pad_labels(labels)
    out = ref.new_zeros(mask.shape)
    for i, s in enumerate(scores):
        out = out.index_put((torch.full((len(s),), i), torch.arange(len(s))), s)
    return out, lab.to(ref.dtype), mask

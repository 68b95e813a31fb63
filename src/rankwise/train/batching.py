"""Turn training examples into the one loss shape: an in-batch score matrix with its labels.

This is the single place where a dual-encoder batch becomes ``(scores, labels, mask)``: each
query is scored against every document of the batch (its positive, its hard negatives, every
other query's documents). A document that appears several times in the batch is encoded once,
and is labelled positive for every query that has it among its positives, so a shared
positive is never treated as another query's negative.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from rankwise.data.examples import TrainExample


@dataclass
class InBatch:
    queries: list[str]
    doc_ids: list[str]
    docs: list[str]
    labels: torch.Tensor  # [n_queries, n_docs], 1.0 where the document is a positive of the query


def build_inbatch(examples: Sequence[TrainExample], rng: np.random.Generator, n_negatives: int = 0) -> InBatch:
    """One sampled positive and up to ``n_negatives`` sampled hard negatives per example."""
    doc_index: dict[str, int] = {}
    docs: list[str] = []

    def add(did: str, text: str) -> None:
        if did not in doc_index:
            doc_index[did] = len(docs)
            docs.append(text)

    for ex in examples:
        add(*ex.positives[int(rng.integers(len(ex.positives)))])
        if n_negatives and ex.negatives:
            take = min(n_negatives, len(ex.negatives))
            for j in rng.choice(len(ex.negatives), size=take, replace=False):
                add(*ex.negatives[int(j)])
    labels = torch.zeros(len(examples), len(docs))
    for i, ex in enumerate(examples):
        for did, _ in ex.positives:
            j = doc_index.get(did)
            if j is not None:
                labels[i, j] = 1.0
    return InBatch([ex.query for ex in examples], list(doc_index), docs, labels)


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
    n = max((len(s) for s in scores), default=0)
    ref = scores[0] if scores else torch.zeros(0)
    out = ref.new_zeros(len(scores), n)
    lab = torch.zeros(len(scores), n, dtype=ref.dtype)
    mask = torch.zeros(len(scores), n, dtype=torch.bool)
    for i, (s, y) in enumerate(zip(scores, labels)):
        out = out.index_put((torch.full((len(s),), i), torch.arange(len(s))), s)
        lab[i, : len(s)] = torch.as_tensor(list(y), dtype=ref.dtype)
        mask[i, : len(s)] = True
    return out, lab, mask

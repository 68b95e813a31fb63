"""The typed batch every loss reads: labels and mask beside the scores, and the optional
hard-negative part that only text families' batches have. Below both training and negatives."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class LabelledBatch:
    """What every loss needs of a batch: ``labels[q, i]`` and ``mask[q, i]`` (None: every entry
    counts). Families whose examples carry their own lists (features, responses, clicks) extend
    it with their inputs; text families' batches add the mined hard-negative part
    (``positive``, ``hard``, ``positive_index``: see :func:`hard_negatives`)."""

    labels: torch.Tensor
    mask: torch.Tensor | None


def hard_negatives(batch) -> list[list[tuple[int, int]]]:
    """Per query: ``(column, index into example.negatives)`` of its sampled hard negatives; empty
    lists for a batch without a hard-negative part."""
    return getattr(batch, "hard", None) or [[] for _ in range(len(batch.labels))]

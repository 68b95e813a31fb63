"""Feature scorers (:class:`~rankwise.models.feature_scorer.FeatureScorer`, learning to rank on
LETOR lists): a step is ``batch_size`` queries' whole lists (or a random ``list_size`` of each
list's rows when a list is longer); evaluation scores every row of LETOR lists."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from rankwise.batch import LabelledBatch
from rankwise.families._lists import OwnListFamily
from rankwise.families.base import register_family
from rankwise.models.feature_scorer import SCORERS, FeatureScorer, load_scorer, pad_features
from rankwise.training.batching import pad_labels


@dataclass
class FeatureBatch(LabelledBatch):
    """Padded feature lists: ``x [Q, L, F]``, ``labels`` and ``mask`` [Q, L]."""

    x: torch.Tensor


@register_family(FeatureScorer)
class FeatureFamily(OwnListFamily):
    name = "feature-scorer"

    def batch(self, examples, rng, config, n_negatives, extra, choose):
        picks = [self.rows(len(ex.labels), config, rng) for ex in examples]
        x, _ = pad_features([torch.as_tensor(ex.features[r], dtype=torch.float32) for ex, r in zip(examples, picks)])
        labels, mask = pad_labels([ex.labels[r].tolist() for ex, r in zip(examples, picks)])
        return FeatureBatch(labels, mask, x)

    def forward_backward(self, batch, loss_of_scores, config, token_cache, check):
        device = self.model.device
        mask = batch.mask.to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.bf16):
            scores = self.model(batch.x.to(device), mask)
        return self.backward(scores, mask, loss_of_scores, check)

    def evaluate(self, dataset, k: int = 100, *, metrics=None, **kw):
        from rankwise.metrics.model import evaluate_lists

        return evaluate_lists(self.model, dataset, metrics)

    @classmethod
    def recognises(cls, path: Path) -> bool:
        try:
            return json.loads((path / "config.json").read_text(encoding="utf-8")).get("scorer") in SCORERS
        except (OSError, ValueError, AttributeError):
            return False

    @classmethod
    def load(cls, path, *, device=None):
        model = load_scorer(path)
        return model.to(device) if device else model

"""Language-model preference lists (:class:`~rankwise.models.preference.PreferenceModel`): a step
is ``batch_size`` prompts' response lists (a random ``list_size`` of a longer list), scored by the
policy's log-likelihood ratio against its frozen reference; it scores (prompt, response) pairs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rankwise.batch import LabelledBatch
from rankwise.families._lists import OwnListFamily
from rankwise.families.base import register_family
from rankwise.models.preference import PreferenceModel
from rankwise.training.batching import pad_labels


@dataclass
class PreferenceBatch(LabelledBatch):
    prompts: list[str]
    responses: list[list[str]]

    def pairs(self) -> list[tuple[str, str]]:
        return [(p, r) for p, rs in zip(self.prompts, self.responses) for r in rs]


@register_family(PreferenceModel)
class PreferenceFamily(OwnListFamily):
    name = "preference"

    @property
    def module(self):
        return self.model.policy

    def batch(self, examples, rng, config, n_negatives, extra, choose):
        picks = [self.rows(len(ex.responses), config, rng) for ex in examples]
        labels, mask = pad_labels([[ex.labels[i] for i in r] for ex, r in zip(examples, picks)])
        responses = [[ex.responses[i] for i in r] for ex, r in zip(examples, picks)]
        return PreferenceBatch(labels, mask, [ex.prompt for ex in examples], responses)

    def forward_backward(self, batch, loss_of_scores, config, token_cache, check):
        mask = batch.mask.to(self.model.device)
        with torch.autocast(self.model.device.type, dtype=torch.bfloat16, enabled=config.bf16):
            flat = self.model.scores(batch.pairs())
        scores = flat.float().new_zeros(mask.shape).masked_scatter(mask, flat.float())
        return self.backward(scores, mask, loss_of_scores, check)

    def score(self, query: str, docs: Sequence[str], batch_size: int = 64) -> np.ndarray:
        return self.model.predict(query, docs)

    @classmethod
    def recognises(cls, path: Path) -> bool:
        try:
            return json.loads((path / "rankwise.json").read_text(encoding="utf-8")).get("kind") == "preference"
        except (OSError, ValueError, AttributeError):
            return False

    @classmethod
    def load(cls, path, *, device=None):
        model = PreferenceModel.load(path)
        return model.to(device) if device else model

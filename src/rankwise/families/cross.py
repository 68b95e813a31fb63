"""The cross-encoder (:class:`~rankwise.models.CrossEncoder`): each query's candidate list scored
pair by pair, ``scores[q, c]`` (``config.list_size`` candidates a list, in chunks of
``cache_chunk`` pairs with gradient caching); it reranks a first stage and teaches."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from rankwise.families.base import Family, register_family
from rankwise.models.cross_encoder import CrossEncoder
from rankwise.models.folders import is_cross_encoder_folder
from rankwise.training.batching import build_lists
from rankwise.training.grad_cache import Side

_HEAD = ("classifier", "score", "bert.pooler", "roberta.pooler", "pooler")  # sequence-classification heads


@register_family(CrossEncoder)
class CrossFamily(Family):
    name = "cross-encoder"
    default_list_size = 8
    data_parallel = True

    @property
    def module(self):
        return self.model.backbone

    @contextmanager
    def training_lengths(self, config) -> Iterator[None]:
        kept = self.model.config.max_length
        self.model.config.max_length = config.pair_max_length or kept
        try:
            yield
        finally:
            self.model.config.max_length = kept

    def negatives_per_query(self, config, uses_hard: bool) -> int:
        """Hard negatives a list: ``negatives_per_query`` when set, else the whole list's worth."""
        size = config.list_size or self.default_list_size
        return min(config.negatives_per_query or size - 1, size - 1)

    def batch(self, examples, rng, config, n_negatives, extra, choose):
        return build_lists(
            examples,
            rng,
            config.list_size or self.default_list_size,
            n_hard=n_negatives,
            extra=extra,
            choose=choose,
            by_text=config.same_text_same_doc,
        )

    def param_groups(self) -> list[tuple[list[str], float]]:
        """A fresh scoring head (pooler and classifier) learns at ``head_lr_scale`` x the lr."""
        if not getattr(self.model, "fresh_head", False):
            return []
        return [([n for n, _ in self.module.named_parameters() if n.startswith(_HEAD)], -1.0)]

    def forward_backward(self, batch, loss_of_scores, config, token_cache, check):
        mask = batch.mask.to(self.model.device)

        def combine(flat: torch.Tensor) -> torch.Tensor:
            return flat.new_zeros(mask.shape).masked_scatter(mask, flat)  # row-major, as pairs() lists them

        def score(chunk):
            return self.model.score_counted(
                chunk, token_cache=token_cache, chunk_tokens=config.chunk_tokens_on(self.model.device)
            )

        return self.run_sides(
            [Side(score, batch.pairs())],
            combine,
            loss_of_scores,
            config,
            check,
        )

    def lengths(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([len(x) for x in self.model.tokenizer(list(texts), truncation=True)["input_ids"]])

    def score(self, query: str, docs: Sequence[str], batch_size: int = 64) -> np.ndarray:
        return self.model.rank(query, docs, batch_size=batch_size)

    def rank(self, query: str, docs: Sequence[str], batch_size: int = 64) -> np.ndarray:
        return self.model.rank(query, docs, batch_size=batch_size)

    def second_stage(self, *, interpolate: float = 0.0, batch_size: int = 64):
        from rankwise.index.rerank import CrossEncoderStage

        return CrossEncoderStage(self.model, interpolate=interpolate, batch_size=batch_size)

    def teacher(self):
        from rankwise.negatives.teacher import CrossEncoderTeacher

        return CrossEncoderTeacher(self.model)

    @classmethod
    def fresh(cls, config) -> CrossEncoder:
        return CrossEncoder(config.model, seed=config.seed)

    @classmethod
    def recognises(cls, path: Path) -> bool:
        return is_cross_encoder_folder(path)

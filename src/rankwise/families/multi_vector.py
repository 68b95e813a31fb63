"""The multi-vector encoder (:class:`~rankwise.models.MultiVectorEncoder`, ColBERT or XTR-trained):
queries and documents encoded apart into token vectors, ``scores[q, d]`` their MaxSim over the
batch's documents (XTR's top-k form with ``scoring="xtr"``); it retrieves (exact MaxSim, or a
token-level faiss IVF-PQ index gathering candidates for exact re-scoring), reranks and teaches."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from rankwise.families.base import register_family
from rankwise.families.dual import DualFamily
from rankwise.models.multi_vector import MultiVectorEncoder, is_multi_vector_folder
from rankwise.training.grad_cache import Side, cached_forward_backward


@register_family(MultiVectorEncoder)
class MultiVectorFamily(DualFamily):
    name = "multi-vector"
    embeds = False  # token vectors: dense re-mining and clustering need one vector a text

    @property
    def module(self):
        return self.model

    @contextmanager
    def training_lengths(self, config) -> Iterator[None]:
        """Documents at the config's limit while training; queries keep their fixed expansion length."""
        cfg = self.model.config
        kept = cfg.doc_max_length
        cfg.doc_max_length = config.doc_max_length or kept
        try:
            yield
        finally:
            cfg.doc_max_length = kept

    def forward_backward(self, batch, loss_of_scores, config, token_cache, check):
        model = self.model
        kw = {"token_cache": token_cache, "chunk_tokens": config.chunk_tokens_on(model.device)}
        return cached_forward_backward(
            [
                Side(lambda t: model.embed_counted(t, "query", **kw), list(batch.queries)),
                Side(lambda t: model.embed_counted(t, "doc", **kw), list(batch.docs)),
            ],
            model.scores,
            loss_of_scores,
            device_type=model.device.type,
            cache_chunk=config.cache_chunk,
            bf16=config.bf16,
            check=check,
            shard=self.shard,
        )

    def encode(self, texts: Sequence[str], side: str, **kw: Any):
        return self.model.encode(list(texts), side, **kw)

    def score(self, query: str, docs: Sequence[str], batch_size: int = 64) -> np.ndarray:
        return self.model.score([query], list(docs))[0]

    def first_stage(self, *, show_progress: bool = False, structure: str = "exact", xtr: bool = False):
        from rankwise.index.rerank import MultiVectorStage

        return MultiVectorStage(self.model, structure=structure, xtr=xtr, show_progress=show_progress)

    def teacher(self):
        from rankwise.negatives.teacher import FamilyTeacher

        return FamilyTeacher(self)

    def search(self, dataset, k, *, show_progress=False, **_):
        from rankwise.index.rerank import Pipeline

        return (
            Pipeline(self.first_stage(show_progress=show_progress), None, depth=min(k, len(dataset.corpus)))
            .run(dataset)
            .run
        )

    @classmethod
    def fresh(cls, config) -> MultiVectorEncoder:
        return MultiVectorEncoder.load(config.model, seed=config.seed)

    @classmethod
    def recognises(cls, path: Path) -> bool:
        return is_multi_vector_folder(path)

    @classmethod
    def load(cls, path, *, device=None) -> MultiVectorEncoder:
        return MultiVectorEncoder.load(path, device=device)

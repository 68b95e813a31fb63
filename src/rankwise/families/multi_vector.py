"""The multi-vector encoder (:class:`~rankwise.models.MultiVectorEncoder`, ColBERT or XTR-trained):
queries and documents encoded apart into token vectors, ``scores[q, d]`` their MaxSim over the
batch's documents (XTR's top-k form with ``scoring="xtr"``); it retrieves (exact MaxSim, or a
token-level faiss IVF-PQ index gathering candidates for exact re-scoring), reranks and teaches."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rankwise.families._apart import EncodedApartFamily
from rankwise.families.base import register_family
from rankwise.models.multi_vector import MultiVectorEncoder, is_multi_vector_folder


@register_family(MultiVectorEncoder)
class MultiVectorFamily(EncodedApartFamily):
    name = "multi-vector"

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

    def first_stage(self, *, show_progress: bool = False, structure: str = "exact", xtr: bool = False):
        from rankwise.index.rerank import MultiVectorStage

        return MultiVectorStage(self.model, structure=structure, xtr=xtr, show_progress=show_progress)

    @classmethod
    def fresh(cls, config) -> MultiVectorEncoder:
        return MultiVectorEncoder.load(config.model, seed=config.seed)

    @classmethod
    def recognises(cls, path: Path) -> bool:
        return is_multi_vector_folder(path)

    @classmethod
    def load(cls, path, *, device=None) -> MultiVectorEncoder:
        return MultiVectorEncoder.load(path, device=device)

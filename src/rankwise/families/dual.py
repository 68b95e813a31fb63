"""The dual encoder (:class:`~rankwise.models.BiEncoder`): queries and documents encoded apart,
``scores = q @ d.T`` over every document of the batch (in-batch negatives for free); it retrieves
from a whole corpus, reranks, teaches and embeds texts for dynamic mining and clustered batches."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from rankwise.families.base import Family, register_family
from rankwise.models.bi_encoder import BiEncoder
from rankwise.training.batching import build_inbatch
from rankwise.training.grad_cache import forward_backward

PRINCIPAL_AXES_DOCS = 20_000  # documents whose embeddings fix the rotation (of 384 axes: plenty)


def rotate_onto_training_documents(model: BiEncoder, examples) -> None:
    """``model`` rotated onto the principal axes of its training documents' embeddings (the
    positives, a sample bounding the cost): what ``principal_axes`` does before the first step."""
    docs = list(dict.fromkeys(t for ex in examples for _, t in ex.positives))
    model.rotate_to_principal_axes(docs[:PRINCIPAL_AXES_DOCS])


@register_family(BiEncoder)
class DualFamily(Family):
    name = "bi-encoder"
    embeds = True
    retrieves = True
    data_parallel = True
    embedding_terms = True

    @property
    def module(self):
        """The trained parameters: the shared tower, or both untied towers, and a projection after
        pooling when the model has one."""
        if self.model.untied:
            return torch.nn.ModuleDict({"query": self.model.query_backbone, "doc": self.model.backbone})
        if self.model.projection is not None:
            return torch.nn.ModuleDict({"doc": self.model.backbone, "projection": self.model.projection})
        return self.model.backbone

    def prepare_training(self, examples, config) -> None:
        """Prompts given in the config become the model's (used in training, kept when it is saved);
        ``untie`` and ``principal_axes`` change the model before its first step."""
        if config.query_prompt is not None:
            self.model.config.query_prompt = config.query_prompt
        if config.doc_prompt is not None:
            self.model.config.doc_prompt = config.doc_prompt
        if config.untie:
            self.model.untie()
        if config.principal_axes:
            rotate_onto_training_documents(self.model, examples)

    @contextmanager
    def training_lengths(self, config) -> Iterator[None]:
        cfg = self.model.config
        kept = (cfg.query_max_length, cfg.doc_max_length)
        cfg.query_max_length = config.query_max_length or kept[0]
        cfg.doc_max_length = config.doc_max_length or kept[1]
        try:
            yield
        finally:
            cfg.query_max_length, cfg.doc_max_length = kept

    def batch(self, examples, rng, config, n_negatives, extra, choose):
        return build_inbatch(examples, rng, n_negatives, extra=extra, choose=choose, by_text=config.same_text_same_doc)

    def forward_backward(self, batch, loss_of_scores, config, token_cache, check):
        return forward_backward(
            self.model,
            batch.queries,
            batch.docs,
            loss_of_scores,
            cache_chunk=config.cache_chunk,
            chunk_tokens=config.chunk_tokens_on(self.model.device),
            token_cache=token_cache,
            bf16=config.bf16,
            check=check,
            shard=self.shard,
            terms=self._terms(config),
        )

    @staticmethod
    def _terms(config):
        if not config.embedding_terms:
            return None
        from rankwise.losses.embedding_terms import parse_embedding_terms

        return parse_embedding_terms(config.embedding_terms)

    def lengths(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([len(x) for x in self.model.token_ids(texts, "doc")])

    def encode(self, texts: Sequence[str], side: str, **kw: Any) -> np.ndarray:
        return self.model.encode(list(texts), side, **kw)

    def score(self, query: str, docs: Sequence[str], batch_size: int = 64) -> np.ndarray:
        return self.teacher().score(query, docs)  # one place encodes and takes the dot products

    def first_stage(self, *, show_progress: bool = False):
        from rankwise.index.rerank import DenseStage

        return DenseStage(self.model, show_progress=show_progress)

    def teacher(self):
        from rankwise.negatives.teacher import BiEncoderTeacher

        return BiEncoderTeacher(self.model)

    def search(self, dataset, k, *, show_progress=False, cache=False, embeddings=None, **_):
        from rankwise.index.retrieve import dense_run

        return dense_run(self.model, dataset, k, show_progress=show_progress, cache=cache, embeddings=embeddings)

    @classmethod
    def fresh(cls, config) -> BiEncoder:
        return BiEncoder.load(config.model)

    @classmethod
    def recognises(cls, path) -> bool:
        return False  # the fallback of load_model: any other folder loads as a dual encoder

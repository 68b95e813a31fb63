"""The learned sparse encoder (:class:`~rankwise.models.SparseEncoder`, SPLADE or inference-free):
queries and documents encoded apart into vocabulary-sized weights, ``scores = q @ d.T`` over the
batch's documents, plus the sparsity regulariser (``config.sparsity``) on the same weights; it
retrieves exactly from an inverted index (or Seismic's approximate one), reranks and teaches."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rankwise.families.base import register_family
from rankwise.families.dual import DualFamily
from rankwise.losses.sparsity import SPARSITY
from rankwise.models.sparse_encoder import SparseEncoder, is_sparse_folder
from rankwise.registry import FAMILIES
from rankwise.training.grad_cache import Side, cached_forward_backward


@register_family(SparseEncoder)
class SparseFamily(DualFamily):
    name = "sparse"
    embeds = False  # its vectors live in vocabulary space: dense re-mining and clustering do not apply
    step = 0  # the loop's step (begin_step): the regulariser's warm-up

    def __new__(cls, model=None):
        """An inference-free model's family is :class:`InferenceFreeFamily` (the same model type)."""
        inference_free = getattr(getattr(model, "config", None), "inference_free", False)
        return super().__new__(InferenceFreeFamily if cls is SparseFamily and inference_free else cls)

    @property
    def module(self):
        return self.model

    def param_groups(self) -> list[tuple[list[str], float]]:
        """An inference-free query table learns at ``head_lr_scale`` x the lr (its own rate, as
        sentence-transformers' ``learning_rate_mapping`` gives it)."""
        return [(["query_weights"], -1.0)] if self.model.query_weights is not None else []

    def prepare_training(self, examples, config) -> None:
        """An inference-free model whose query table is untouched starts it at the training documents' IDF."""
        table = self.model.query_weights
        if table is not None and bool((table == 1).all()):
            self.model.set_idf(list(dict.fromkeys(t for ex in examples for _, t in ex.positives + ex.negatives)))

    def begin_step(self, step: int, config) -> None:
        self.step, self.steps = step, config.steps

    def sparsity(self, config):
        default = "idf-flops" if self.model.config.inference_free else "flops"
        return config.sparsity or SPARSITY.create(default)

    def forward_backward(self, batch, loss_of_scores, config, token_cache, check):
        model, held = self.model, {}
        regulariser = self.sparsity(config)
        kw = {"token_cache": token_cache, "chunk_tokens": config.chunk_tokens_on(model.device)}

        def combine(q: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
            held["q"], held["d"] = q, d  # the regulariser reads the same weights the scores do
            return q @ d.T

        def loss(scores: torch.Tensor):
            value, info = loss_of_scores(scores)
            extra, reg_info = regulariser(held["q"], held["d"], self.step, config.steps)
            nonzero = {
                "nonzero_q": float((held["q"] > 0).sum(1).float().mean()),
                "nonzero_d": float((held["d"] > 0).sum(1).float().mean()),
            }
            return value + extra, info | reg_info | nonzero

        return cached_forward_backward(
            [
                Side(lambda t: model.embed_counted(t, "query", **kw), list(batch.queries)),
                Side(lambda t: model.embed_counted(t, "doc", **kw), list(batch.docs)),
            ],
            combine,
            loss,
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

    def first_stage(self, *, show_progress: bool = False, approximate: bool = False):
        from rankwise.index.rerank import SparseStage

        return SparseStage(self.model, approximate=approximate, show_progress=show_progress)

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

    def evaluate(self, dataset, k: int = 100, *, metrics=None, **kw):
        """Effectiveness and sparsity: mean non-zeros per query and document, FLOPS per query."""
        from rankwise.metrics.model import score_run
        from rankwise.models.sparse_encoder import flops_per_query, mean_nonzeros

        stage = self.first_stage(show_progress=kw.get("show_progress", False))
        from rankwise.index.rerank import Pipeline

        result = score_run(dataset, Pipeline(stage, None, depth=min(k, len(dataset.corpus))).run(dataset).run, metrics)
        queries = self.model.encode(list(dataset.split_queries.values()), "query")
        docs = stage.retriever.docs
        result.metrics |= {
            "nonzero_query": mean_nonzeros(queries),
            "nonzero_doc": mean_nonzeros(docs),
            "flops_per_query": flops_per_query(queries, docs),
        }
        return result

    @classmethod
    def fresh(cls, config) -> SparseEncoder:
        return SparseEncoder.load(config.model, seed=config.seed)

    @classmethod
    def recognises(cls, path: Path) -> bool:
        return is_sparse_folder(path)

    @classmethod
    def load(cls, path, *, device=None) -> SparseEncoder:
        return SparseEncoder.load(path, device=device)


class InferenceFreeFamily(SparseFamily):
    """``--kind inference-free``: the sparse family's model with queries as a trained table."""

    name = "inference-free"

    @classmethod
    def fresh(cls, config) -> SparseEncoder:
        return SparseEncoder.load(config.model, inference_free=True, seed=config.seed)


FAMILIES.register(InferenceFreeFamily.name)(InferenceFreeFamily)

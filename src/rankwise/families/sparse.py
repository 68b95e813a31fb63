"""The learned sparse encoder (:class:`~rankwise.models.SparseEncoder`, SPLADE or inference-free):
queries and documents encoded apart into vocabulary-sized weights, ``scores = q @ d.T`` over the
batch's documents, plus the sparsity regulariser (``config.sparsity``) on the same weights; it
retrieves exactly from an inverted index (or Seismic's approximate one), reranks and teaches."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from rankwise.families._apart import EncodedApartFamily
from rankwise.families.base import register_family
from rankwise.losses.sparsity import SPARSITY
from rankwise.models.sparse_encoder import SparseEncoder, is_sparse_folder
from rankwise.registry import FAMILIES

log = logging.getLogger(__name__)


@register_family(SparseEncoder)
class SparseFamily(EncodedApartFamily):
    name = "sparse"
    step = 0  # the loop's step (begin_step): the regulariser's warm-up

    def __new__(cls, model=None):
        """An inference-free model's family is :class:`InferenceFreeFamily` (the same model type)."""
        inference_free = getattr(getattr(model, "config", None), "inference_free", False)
        return super().__new__(InferenceFreeFamily if cls is SparseFamily and inference_free else cls)

    def param_groups(self) -> list[tuple[list[str], float]]:
        """An inference-free query table learns at ``head_lr_scale`` x the lr (its own rate, as
        sentence-transformers' ``learning_rate_mapping`` gives it)."""
        return [(["query_weights"], -1.0)] if self.model.query_weights is not None else []

    def prepare_training(self, examples, config) -> None:
        """A masked-LM head the checkpoint lacked is fit on the training documents
        (:mod:`rankwise.models.sparse_head`); an inference-free model whose query table is untouched
        starts it at their IDF."""
        documents = list(dict.fromkeys(t for ex in examples for _, t in ex.positives + ex.negatives))
        if self.model.fresh_parameters and config.head_fit_steps:
            from rankwise.models.sparse_head import fit_fresh_head

            fit = fit_fresh_head(
                self.model,
                documents,
                steps=config.head_fit_steps,
                expansion=config.head_fit_expansion,
                seed=config.seed,
                bm25_steps=config.head_fit_bm25_steps,
                bm25_lr=config.head_fit_bm25_lr,
            )
            log.info("fresh masked-LM head fit: %s", fit)
        table = self.model.query_weights
        if table is not None and bool((table == 1).all()):
            self.model.set_idf(documents)

    def begin_step(self, step: int, config) -> None:
        self.step = step

    def sparsity(self, config):
        default = "idf-flops" if self.model.config.inference_free else "flops"
        return config.sparsity or SPARSITY.create(default)

    def objective(self, loss_of_scores, config):
        """Dot products, and the loss plus the sparsity regulariser of the same weights."""
        regulariser, held = self.sparsity(config), {}

        def combine(q: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
            held["q"], held["d"] = q, d  # the regulariser reads the weights the scores come from
            return q @ d.T

        def loss(scores: torch.Tensor):
            value, info = loss_of_scores(scores)
            extra, reg_info = regulariser(held["q"], held["d"], self.step, config.steps)
            nonzero = {f"nonzero_{k}": float((v > 0).sum(1).float().mean()) for k, v in held.items()}
            return value + extra, info | reg_info | nonzero

        return combine, loss

    def first_stage(self, *, show_progress: bool = False, approximate: bool = False):
        from rankwise.index.rerank import SparseStage

        return SparseStage(self.model, approximate=approximate, show_progress=show_progress)

    def evaluate(self, dataset, k: int = 100, *, metrics=None, **kw):
        """Effectiveness and sparsity: mean non-zeros per query and document, FLOPS per query."""
        from rankwise.metrics.model import score_run
        from rankwise.models.sparse_encoder import flops_per_query, mean_nonzeros

        stage, run = self.retrieve(dataset, k, show_progress=kw.get("show_progress", False))
        result = score_run(dataset, run, metrics)
        queries, docs = self.model.encode(list(dataset.split_queries.values()), "query"), stage.retriever.docs
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

"""Sparsity regularisers of learned sparse encoders (``--sparsity``), added to the ranking loss.

FLOPS (Paria et al., "Minimizing FLOPs to Learn Efficient Sparse Representations", ICLR 2020), as
SPLADE uses it (Formal et al., SIGIR 2021) on each side apart::

    FLOPS(W) = sum_j ( mean_i |w_ij| )^2          (W: the batch's [n, vocab] weights)
    R(t) = lambda_q(t) FLOPS(Q) + lambda_d(t) FLOPS(D),   lambda(t) = lambda min(1, t / T)^2

the weights warmed up quadratically over the first ``T = warmup x steps`` steps, as SPLADE's
authors schedule them (and sentence-transformers' ``SpladeRegularizerWeightSchedulerCallback``,
whose defaults these are: lambda_q 5e-5, lambda_d 3e-5, a third of training).

``idf-flops`` is the inference-free form of Geng, Ru and Yang (arXiv 2411.04403): queries have no
model (their weights are the IDF table), so only documents are penalised, and relevance is
``sum_j idf_j d_j``: a term's ranking gradient grows with its IDF while its FLOPS penalty does not,
so the penalty removes uninformative, frequent terms first (the paper's IDF-aware FLOPS).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rankwise.registry import Registry


def flops(weights: torch.Tensor) -> torch.Tensor:
    """``sum_j (mean_i |w_ij|)^2`` of ``[n, vocab]`` weights.

    >>> flops(torch.tensor([[1.0, 0.0, 2.0], [3.0, 0.0, 0.0]])).item()  # 2^2 + 0 + 1^2
    5.0
    """
    return (weights.abs().mean(dim=0) ** 2).sum()


class Sparsity:
    """Regulariser of a batch's query and document weights at a training step."""

    def weight(self, base: float, step: int, steps: int) -> float:
        ramp = max(1.0, self.warmup * steps)
        return base * min(1.0, step / ramp) ** 2

    def __call__(self, queries: torch.Tensor, docs: torch.Tensor, step: int, steps: int):
        raise NotImplementedError

    def __str__(self) -> str:
        return SPARSITY.spec_of(self) or type(self).__name__


SPARSITY: Registry[Sparsity] = Registry("sparsity", Sparsity)


@SPARSITY.register("flops")
@dataclass
class Flops(Sparsity):
    """SPLADE's FLOPS on queries and documents apart, weights warmed up quadratically."""

    query: float = 5e-5
    doc: float = 3e-5
    warmup: float = 1 / 3

    def __call__(self, queries, docs, step, steps):
        wq, wd = self.weight(self.query, step, steps), self.weight(self.doc, step, steps)
        fq, fd = flops(queries), flops(docs)
        return wq * fq + wd * fd, {"flops_q": fq.item(), "flops_d": fd.item()}


@SPARSITY.register("idf-flops")
@dataclass
class IdfFlops(Sparsity):
    """Inference-free: FLOPS on documents alone (queries are the IDF table)."""

    doc: float = 3e-5
    warmup: float = 1 / 3

    def __call__(self, queries, docs, step, steps):
        fd = flops(docs)
        return self.weight(self.doc, step, steps) * fd, {"flops_d": fd.item()}

"""Terms over a dual encoder's embeddings rather than its scores: Matryoshka representation
learning and quantisation-aware training. Each wraps whatever loss the run uses (a sum included).

* **Matryoshka** (Kusupati et al., NeurIPS 2022): the loss is applied to the scores of the first
  m dimensions of the embeddings for each m in ``dims``, L = sum_m w_m L(s_m), so any prefix of
  the embedding is a usable smaller one. With a normalising model the prefixes are normalised
  again (a prefix of a unit vector is not one), as sentence-transformers' MatryoshkaLoss scores
  them by cosine. ``distill=W`` adds self-distillation of the full size into each prefix (the
  score-level KL of Starbucks, Zhuang et al. 2024; sentence-transformers' ``Matryoshka2dLoss``
  has an embedding-level one): W * sum_m KL(softmax(s / tau) || softmax(s_m / tau)) per query over
  the batch's documents, the full-size scores s held fixed as the teacher (``tau``, default 0.05),
  so a prefix learns the full size's ranking of every candidate, not only where the positive is.
* **Quantisation-aware** terms: the loss is also applied to the scores of quantised embeddings,
  int8 (x -> round(x / s) * s with s = max|x| / 127 over the batch) or binary (sign(x)), with the
  straight-through estimator (Bengio et al., 2013): the forward pass sees the quantised values,
  the backward pass the identity, x + (q(x) - x).detach().

``TrainConfig(embedding_terms="matryoshka:dims=64/128/256/384")``, ``"quantize:precision=int8"``,
or both joined by ``+``. The full-size, full-precision loss is always the first term (weight 1).

>>> import torch
>>> q, d = torch.tensor([[3.0, 4.0]]), torch.tensor([[3.0, 4.0], [4.0, -3.0]])
>>> terms = parse_embedding_terms("matryoshka:dims=1")
>>> [s.tolist() for s in score_stack(q, d, terms, normalize=False)]
[[[25.0, 0.0]], [[9.0, 12.0]]]
>>> binary = parse_embedding_terms("quantize:precision=binary")
>>> [s.tolist() for s in score_stack(q, d, binary, normalize=False)]
[[[25.0, 0.0]], [[2.0, 0.0]]]
>>> full, prefix = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 0.0]])
>>> kl = prefix_distillation([full, prefix], parse_embedding_terms("matryoshka:dims=1,distill=1,tau=1"))
>>> round(float(kl), 4)  # sum_i p_i log(2 p_i), p = softmax([1, 0]) = (0.731, 0.269)
0.1109
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rankwise.errors import ConfigError

PRECISIONS = ("int8", "binary")


@dataclass(frozen=True)
class EmbeddingTerms:
    dims: tuple[int, ...] = ()  # Matryoshka prefixes (the full size is always scored)
    dim_weights: tuple[float, ...] = ()
    precision: str | None = None  # a quantisation-aware term
    precision_weight: float = 1.0
    distill: float = 0.0  # weight of the full size's KL into each prefix (0: none)
    distill_tau: float = 0.05


def _numbers(text: str, kind: type, what: str) -> tuple:
    try:
        return tuple(kind(x) for x in text.split("/") if x)
    except ValueError:
        raise ConfigError(f"embedding_terms: {what} {text!r}: expected numbers joined by '/'") from None


def parse_embedding_terms(text: str) -> EmbeddingTerms:
    """``"matryoshka:dims=64/128,weights=1/1,distill=1,tau=0.05+quantize:precision=binary,weight=0.5"``."""
    from rankwise.spec import parse_sum

    dims: tuple[int, ...] = ()
    dim_weights: tuple[float, ...] = ()
    precision, precision_weight = None, 1.0
    distill, distill_tau = 0.0, 0.05
    for term in parse_sum(text, "embedding_terms"):
        params = dict(term.params)
        if term.name == "matryoshka":
            dims = _numbers(params.pop("dims", ""), int, "dims")
            dim_weights = _numbers(params.pop("weights", ""), float, "weights") or (1.0,) * len(dims)
            distill = _number(params.pop("distill", "0"), "distill")
            distill_tau = _number(params.pop("tau", "0.05"), "tau")
            if distill < 0 or distill_tau <= 0:
                raise ConfigError("embedding_terms: matryoshka needs distill >= 0 and tau > 0")
            if not dims or len(dim_weights) != len(dims) or min(dims) < 1:
                raise ConfigError("embedding_terms: matryoshka needs dims=a/b/... (and one weight per dim)")
        elif term.name == "quantize":
            precision = params.pop("precision", term.variant or "")
            precision_weight = float(params.pop("weight", "1"))
            if precision not in PRECISIONS:
                raise ConfigError(f"embedding_terms: precision {precision!r}: choose {' or '.join(PRECISIONS)}")
        else:
            raise ConfigError(f"embedding_terms: unknown term {term.name!r}; choose matryoshka or quantize")
        if params:
            raise ConfigError(f"embedding_terms: {term.name} has no parameter {next(iter(params))!r}")
    return EmbeddingTerms(dims, dim_weights, precision, precision_weight, distill, distill_tau)


def _number(text: str, what: str) -> float:
    values = _numbers(text, float, what)
    if len(values) != 1:
        raise ConfigError(f"embedding_terms: {what} {text!r}: expected one number")
    return values[0]


def quantize(x: torch.Tensor, precision: str) -> torch.Tensor:
    """int8 (symmetric, one scale over the tensor) or binary (sign) values, straight-through."""
    if precision == "binary":
        q = torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))
    else:
        scale = x.detach().abs().max().clamp_min(1e-12) / 127
        q = torch.round(x / scale).clamp(-127, 127) * scale
    return x + (q - x).detach()


def score_stack(q: torch.Tensor, d: torch.Tensor, terms: EmbeddingTerms, *, normalize: bool) -> list[torch.Tensor]:
    """The score matrices the terms need: full size first, then each Matryoshka prefix, then the
    quantised embeddings'."""
    out = [q @ d.T]
    for m in terms.dims:
        qm, dm = q[:, :m], d[:, :m]
        if normalize:
            qm, dm = torch.nn.functional.normalize(qm, dim=-1), torch.nn.functional.normalize(dm, dim=-1)
        out.append(qm @ dm.T)
    if terms.precision is not None:
        out.append(quantize(q, terms.precision) @ quantize(d, terms.precision).T)
    return out


def weights(terms: EmbeddingTerms) -> list[float]:
    """One weight per matrix of :func:`score_stack`."""
    return [1.0, *terms.dim_weights, *([terms.precision_weight] if terms.precision else [])]


def prefix_distillation(stack: list[torch.Tensor], terms: EmbeddingTerms) -> torch.Tensor:
    """The ``distill`` term over :func:`score_stack`'s matrices: the full size's softmax over each
    query's documents (no gradient) as the target of every Matryoshka prefix's, KL summed over
    prefixes, averaged over queries, times the weight."""
    teacher = torch.log_softmax(stack[0].detach() / terms.distill_tau, dim=-1)
    total = stack[0].new_zeros(())
    for prefix in stack[1 : 1 + len(terms.dims)]:
        student = torch.log_softmax(prefix / terms.distill_tau, dim=-1)
        total = total + torch.nn.functional.kl_div(student, teacher, log_target=True, reduction="batchmean")
    return terms.distill * total

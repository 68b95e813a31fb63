"""One training step's forward and backward, plain or with gradient caching, for any model family.

Gradient caching (Gao, Zhang, Han and Callan, "Scaling Deep Contrastive Learning Batch Size under
Memory Limited Setup", RepL4NLP 2021; the authors' ``GradCache``): the batch is encoded in chunks
without a graph, the loss and its gradient with respect to every embedding are computed over the
whole batch, then each chunk is encoded again with a graph and back-propagated with its cached
embedding gradients. Activation memory is that of one chunk, whatever the batch size; the
gradients are those of the cached pass's embeddings (each chunk replays its random state, so
dropout draws the same masks in both passes), equal to the plain computation's for a model without
dropout: with dropout, the masks depend on how the batch is chunked, so a cached and a plain step
draw different ones (as with GradCache). It works for every loss of the library, since the loss
only ever sees the score matrix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from rankwise.distributed import Shard
from rankwise.errors import RankwiseError
from rankwise.models.bi_encoder import TokenCount
from rankwise.rng import rng_state, set_rng_state

LossOfScores = Callable[[torch.Tensor], tuple[torch.Tensor, dict[str, float]]]


@dataclass
class Side:
    """One input of a step (a dual encoder's queries, its documents; a cross-encoder's
    pairs): ``encode(chunk)`` returns the chunk's outputs with a graph and its token counts."""

    encode: Callable[[Sequence[Any]], tuple[torch.Tensor, TokenCount]]
    items: Sequence[Any]


def cached_forward_backward(
    sides: Sequence[Side],
    combine: Callable[..., torch.Tensor],
    loss_of_scores: LossOfScores,
    *,
    device_type: str,
    cache_chunk: int | None = None,
    bf16: bool = False,
    check: Callable[[torch.Tensor], None] | None = None,
    shard: Shard | None = None,
) -> tuple[torch.Tensor, dict[str, float], TokenCount]:
    """Encode every side, ``combine`` the outputs into the score matrix (in float32), compute
    ``loss_of_scores(scores)`` and back-propagate into the model. ``cache_chunk``: items per chunk
    with gradient caching (None: one plain pass). ``check(loss)`` runs before any backward pass
    (e.g. to refuse a non-finite loss). ``shard``: this process encodes its share of each side and
    the outputs of all processes are gathered (:mod:`rankwise.distributed`); the caller sums
    the parameter gradients across processes. Any model family whose scores are a function of
    per-item outputs runs through here, so gradient caching and data parallelism serve every family
    and every loss."""
    parts = [shard.part(len(side.items)) if shard else slice(0, len(side.items)) for side in sides]
    if shard is not None and any(p.stop == p.start for p in parts):
        raise RankwiseError(f"a batch side has fewer items than the {shard.world} processes: use a larger batch")
    local = [list(side.items[p]) for side, p in zip(sides, parts)]
    run = _Passes(sides, local, parts, device_type, bf16, shard)
    if not cache_chunk:
        return run.plain(combine, loss_of_scores, check)
    return run.cached(combine, loss_of_scores, check, cache_chunk)


class _Passes:
    """The forward and backward passes of one batch: this process's items of every side (``local``,
    at ``parts`` of the whole), its token counts, and the gathering of outputs across processes."""

    def __init__(self, sides, local, parts, device_type: str, bf16: bool, shard: Shard | None) -> None:
        self.sides, self.local, self.parts, self.shard = sides, local, parts, shard
        self.device_type, self.bf16 = device_type, bf16
        self.real = self.padded = 0

    def encode(self, side: Side, items: list) -> torch.Tensor:
        with torch.autocast(self.device_type, dtype=torch.bfloat16, enabled=self.bf16):
            out, tok = side.encode(items)
        self.real, self.padded = self.real + tok.real, self.padded + tok.padded
        return out

    def whole(self, out: torch.Tensor, side: Side) -> torch.Tensor:
        """Every process's rows (this one's alone without a shard), as a leaf that collects the loss's gradient."""
        full = self.shard.gather(out.float(), len(side.items)) if self.shard else out.detach().float()
        return full.requires_grad_(True)

    def tokens(self) -> TokenCount:
        return TokenCount(self.real, self.padded)

    def plain(self, combine, loss_of_scores: LossOfScores, check) -> tuple[torch.Tensor, dict[str, float], TokenCount]:
        """One pass with activations kept; across processes, the loss's gradient flows back through
        the gathered outputs into this process's share."""
        outs = [self.encode(side, items) for side, items in zip(self.sides, self.local)]
        if self.shard is None:  # one graph from the encoder to the loss
            loss, info = loss_of_scores(combine(*(o.float() for o in outs)))
            if check:
                check(loss)
            loss.backward()
            return loss.detach(), info, self.tokens()
        fulls = [self.whole(o, side) for o, side in zip(outs, self.sides)]
        loss, info = loss_of_scores(combine(*fulls))
        if check:
            check(loss)
        loss.backward()  # the gradient with respect to every process's outputs, the same on each
        pairs = [(o.float(), f.grad[p]) for o, f, p in zip(outs, fulls, self.parts) if f.grad is not None]
        torch.autograd.backward([o for o, _ in pairs], [g for _, g in pairs])  # this process's share
        return loss.detach(), info, self.tokens()

    def cached(
        self, combine, loss_of_scores: LossOfScores, check, chunk: int
    ) -> tuple[torch.Tensor, dict[str, float], TokenCount]:
        """Gradient caching: every output without activations, the loss's gradient with respect to
        them, then each chunk encoded again under its saved random state and back-propagated."""
        cached, states = [], []
        with torch.no_grad():  # pass 1: every output, no activations kept
            for side, items in zip(self.sides, self.local):
                chunks, side_states = [], []
                for start in range(0, len(items), chunk):
                    side_states.append(rng_state())
                    chunks.append(self.encode(side, items[start : start + chunk]).float())
                cached.append(self.whole(torch.cat(chunks), side))
                states.append(side_states)
        after = rng_state()
        loss, info = loss_of_scores(combine(*cached))
        if check:
            check(loss)
        loss.backward()  # gradients of the loss with respect to every output
        for side, items, full, p, side_states in zip(self.sides, self.local, cached, self.parts, states):
            if full.grad is None:  # a side the loss does not depend on
                continue
            grad = full.grad[p] if self.shard else full.grad
            for n, start in enumerate(range(0, len(items), chunk)):  # pass 2: chunk by chunk
                set_rng_state(side_states[n])
                with torch.autocast(self.device_type, dtype=torch.bfloat16, enabled=self.bf16):
                    again, _ = side.encode(items[start : start + chunk])
                again.float().backward(grad[start : start + chunk])
        set_rng_state(after)  # later draws as if pass 2 had not happened
        return loss.detach(), info, self.tokens()


def forward_backward(
    model,
    queries: Sequence[str],
    docs: Sequence[str],
    loss_of_scores: LossOfScores,
    *,
    cache_chunk: int | None = None,
    chunk_tokens: int | None = None,
    token_cache: dict | None = None,
    bf16: bool = False,
    check: Callable[[torch.Tensor], None] | None = None,
    shard: Shard | None = None,
    terms=None,
) -> tuple[torch.Tensor, dict[str, float], TokenCount]:
    """A dual encoder's step: encode queries and documents, score ``q @ d.T``, back-propagate
    (see :func:`cached_forward_backward`); ``terms``: :class:`~rankwise.losses.embedding_terms.EmbeddingTerms`
    whose score matrices the loss also sees."""
    kw = {"token_cache": token_cache, "chunk_tokens": chunk_tokens}
    combine, loss = (lambda q, d: q @ d.T), loss_of_scores
    if terms is not None:  # Matryoshka / quantisation-aware: the loss over a stack of score matrices
        from rankwise.losses.embedding_terms import prefix_distillation, score_stack, weights

        w = weights(terms)

        def combine(q, d):
            return torch.stack(score_stack(q, d, terms, normalize=model.config.normalize))

        def loss(stack):
            full, info = loss_of_scores(stack[0])
            extra = [wi * loss_of_scores(s)[0] for wi, s in zip(w[1:], stack[1:])]
            if terms.distill:
                extra.append(prefix_distillation(list(stack), terms))
            return full + sum(extra), info | {"loss_full_size": float(full.detach())}

    return cached_forward_backward(
        [
            Side(lambda t: model.embed_counted(t, "query", **kw), list(queries)),
            Side(lambda t: model.embed_counted(t, "doc", **kw), list(docs)),
        ],
        combine,
        loss,
        device_type=model.device.type,
        cache_chunk=cache_chunk,
        bf16=bf16,
        check=check,
        shard=shard,
    )

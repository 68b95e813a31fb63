"""One training step's forward and backward for a dual encoder, plain or with gradient caching.

Gradient caching (Gao, Zhang, Han and Callan, "Scaling Deep Contrastive Learning Batch Size under
Memory Limited Setup", RepL4NLP 2021; the authors' ``GradCache``): the batch is encoded in chunks
without a graph, the loss and its gradient with respect to every embedding are computed over the
whole batch, then each chunk is encoded again with a graph and back-propagated with its cached
embedding gradients. Activation memory is that of one chunk, whatever the batch size; the
gradients equal the plain computation's (each chunk replays its random state, so dropout draws
the same masks in both passes). It works for every loss of the library, since the loss only
ever sees the score matrix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from rankwise.models.bi_encoder import TokenCount

LossOfScores = Callable[[torch.Tensor], tuple[torch.Tensor, dict[str, float]]]


def _rng_state() -> tuple[torch.Tensor, list[torch.Tensor] | None]:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    return torch.get_rng_state(), cuda


def _set_rng_state(state: tuple[torch.Tensor, list[torch.Tensor] | None]) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state_all(state[1])


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
) -> tuple[torch.Tensor, dict[str, float], TokenCount]:
    """Encode, score ``q @ d.T`` in float32, compute ``loss_of_scores(scores)`` and back-propagate
    into the model's parameters. ``cache_chunk``: texts per chunk with gradient caching (None: one
    plain pass). ``check(loss)`` runs before any backward pass (e.g. to refuse a non-finite loss)."""
    device_type = model.device.type
    kw = {"token_cache": token_cache, "chunk_tokens": chunk_tokens}
    if not cache_chunk:
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16):
            q, q_tok = model.embed_counted(queries, "query", **kw)
            d, d_tok = model.embed_counted(docs, "doc", **kw)
        loss, info = loss_of_scores(q.float() @ d.float().T)
        if check:
            check(loss)
        loss.backward()
        return loss.detach(), info, TokenCount(q_tok.real + d_tok.real, q_tok.padded + d_tok.padded)

    sides = (("query", list(queries)), ("doc", list(docs)))
    cached, states, real, padded = [], [], 0, 0
    with torch.no_grad():  # pass 1: every embedding, no activations kept
        for kind, texts in sides:
            parts, side_states = [], []
            for start in range(0, len(texts), cache_chunk):
                side_states.append(_rng_state())
                with torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16):
                    emb, tok = model.embed_counted(texts[start : start + cache_chunk], kind, **kw)
                parts.append(emb.float())
                real, padded = real + tok.real, padded + tok.padded
            cached.append(torch.cat(parts).requires_grad_(True))
            states.append(side_states)
    after = _rng_state()
    q, d = cached
    loss, info = loss_of_scores(q @ d.T)
    if check:
        check(loss)
    loss.backward()  # gradients of the loss with respect to every embedding
    for (kind, texts), emb, side_states in zip(sides, cached, states):  # pass 2: one chunk's graph at a time
        for n, start in enumerate(range(0, len(texts), cache_chunk)):
            _set_rng_state(side_states[n])
            with torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16):
                again, _ = model.embed_counted(texts[start : start + cache_chunk], kind, **kw)
            again.float().backward(emb.grad[start : start + cache_chunk])
    _set_rng_state(after)  # later draws as if pass 2 had not happened
    return loss.detach(), info, TokenCount(real, padded)

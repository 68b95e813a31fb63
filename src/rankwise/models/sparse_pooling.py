"""SPLADE's max-pooled vocabulary head without the ``[texts, tokens, vocab]`` logits in memory.

SPLADE's weight for term j is ``w_j = max_t log(1 + relu(x_t . W_j + b_j))`` over a text's tokens.
Because ``log(1 + relu(.))`` never decreases, it equals ``log(1 + relu(max_t (x_t . W_j + b_j)))``:
the activation runs on the ``[texts, vocab]`` maxima only, and the logits are computed a block of
the vocabulary at a time and dropped after their maximum is taken. The backward pass needs only the
arg-max token of each (text, term) whose weight is positive: the gradient of the logits has at most
``texts x vocab`` non-zeros out of ``texts x tokens x vocab``, so the two products of the backward
pass (into the tokens' states and into W) are sparse-dense products, about ``tokens`` times less
work than the dense ones autograd would run through the full logits. The result and its gradients
equal the dense computation's (up to float summation order; tested), ties in the maximum resolved
as ``torch.max`` does.
"""

from __future__ import annotations

import torch

VOCAB_BLOCK = 8192  # vocabulary rows scored at a time: [texts x tokens x 8192] floats transient


def max_pooled_logits(states: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, mask: torch.Tensor):
    """``max_t (states_t . weight_j + bias_j)`` over the unmasked tokens: values and arg-max token,
    each ``[texts, vocab]`` (a text with no unmasked token gets -inf)."""
    n, length, _ = states.shape
    values = states.new_empty(n, weight.shape[0])
    index = torch.empty(n, weight.shape[0], dtype=torch.long, device=states.device)
    blocked = (~mask.bool()).unsqueeze(-1)
    for start in range(0, weight.shape[0], VOCAB_BLOCK):
        end = min(start + VOCAB_BLOCK, weight.shape[0])
        logits = states @ weight[start:end].T
        if bias is not None:
            logits += bias[start:end]
        logits.masked_fill_(blocked, float("-inf"))
        values[:, start:end], index[:, start:end] = logits.max(dim=1)
    return values, index


class _SpladeHead(torch.autograd.Function):
    @staticmethod
    def forward(ctx, states, weight, bias, mask):
        values, index = max_pooled_logits(states, weight, bias, mask)
        ctx.save_for_backward(states, weight, values, index)
        ctx.bias_dtype = None if bias is None else bias.dtype
        return torch.log1p(torch.relu(values))

    @staticmethod
    def backward(ctx, grad_out):
        states, weight, values, index = ctx.saved_tensors
        n, length, hidden = states.shape
        # float32 products whatever autocast ran the forward in; each gradient in its input's dtype
        values, grad_out = values.float(), grad_out.float()
        g = torch.where(values > 0, grad_out / (1 + values.clamp_min(0)), torch.zeros_like(grad_out))
        text, term = g.nonzero(as_tuple=True)
        rows = text * length + index[text, term]  # the flat token each non-zero came from
        shape = (n * length, weight.shape[0])
        sparse = torch.sparse_coo_tensor(torch.stack([rows, term]), g[text, term], shape, check_invariants=False)
        sparse = sparse.coalesce()
        grad_states = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_states = torch.sparse.mm(sparse, weight.float()).view(n, length, hidden).to(states.dtype)
        if ctx.needs_input_grad[1]:
            grad_weight = torch.sparse.mm(sparse.t(), states.reshape(n * length, hidden).float()).to(weight.dtype)
        if ctx.bias_dtype is not None and ctx.needs_input_grad[2]:
            grad_bias = g.sum(dim=0).to(ctx.bias_dtype)
        return grad_states, grad_weight, grad_bias, None


def splade_pool(states: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, mask: torch.Tensor):
    """``[texts, vocab]`` SPLADE weights of the head's input ``states`` ``[texts, tokens, hidden]``
    for the output layer ``weight`` ``[vocab, hidden]`` (and ``bias``), over ``mask``'s tokens.

    >>> states = torch.tensor([[[1.0], [2.0]]])  # one text, two tokens, hidden size 1
    >>> w = torch.tensor([[1.0], [-1.0]])  # term 0 follows the state, term 1 opposes it
    >>> splade_pool(states, w, torch.zeros(2), torch.ones(1, 2)).tolist()  # log(1 + 2), log(1 + relu(-1))
    [[1.0986123085021973, 0.0]]
    """
    return _SpladeHead.apply(states, weight, bias, mask)

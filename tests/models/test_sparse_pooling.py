"""SPLADE's max-pooled head: equal to the dense computation in value and gradient (a gradient
check in float64, and a training step of the tiny masked LM against the dense path)."""

from __future__ import annotations

import pytest
import torch

import rankwise as rw
from rankwise.models import sparse_pooling
from rankwise.models.sparse_encoder import SparseEncoder, _dense_pool


def _inputs(dtype=torch.float64):
    g = torch.Generator().manual_seed(0)
    states = torch.randn(3, 5, 4, generator=g, dtype=dtype, requires_grad=True)
    weight = torch.randn(11, 4, generator=g, dtype=dtype, requires_grad=True)
    bias = torch.randn(11, generator=g, dtype=dtype, requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
    return states, weight, bias, mask


def test_equals_the_dense_pooling_and_passes_a_gradient_check(monkeypatch):
    monkeypatch.setattr(sparse_pooling, "VOCAB_BLOCK", 4)  # several vocabulary blocks, one short
    states, weight, bias, mask = _inputs()
    dense = _dense_pool(states @ weight.T + bias, mask)
    pooled = sparse_pooling.splade_pool(states, weight, bias, mask)
    torch.testing.assert_close(pooled, dense)
    assert (pooled == 0).any() and (pooled > 0).any()  # both sides of the relu are exercised
    assert torch.autograd.gradcheck(lambda s, w, b: sparse_pooling.splade_pool(s, w, b, mask), (states, weight, bias))


def test_bf16_autocast_gives_float32_gradients_close_to_the_dense_ones():
    states, weight, bias, mask = (x.float() if x.is_floating_point() else x for x in _inputs())
    states, weight, bias = (x.detach().requires_grad_() for x in (states, weight, bias))
    upstream = torch.linspace(-1, 1, weight.shape[0])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        pooled = sparse_pooling.splade_pool(states, weight, bias, mask)
    (pooled.float() * upstream).sum().backward()
    got = [x.grad.clone() for x in (states, weight, bias)]
    assert all(g.dtype == torch.float32 for g in got)
    for x in (states, weight, bias):
        x.grad = None
    (_dense_pool(states @ weight.T + bias, mask) * upstream).sum().backward()
    for g, x in zip(got, (states, weight, bias)):
        torch.testing.assert_close(g, x.grad, rtol=0.05, atol=0.05)  # bf16 logits: about 3 significant digits


def test_padding_never_wins_the_maximum():
    states, weight, bias, mask = _inputs()
    with torch.no_grad():
        states[2, 1:] = 100.0  # padding states that would dominate every positive term
    pooled = sparse_pooling.splade_pool(states, weight, bias, mask)
    torch.testing.assert_close(pooled[2], torch.log1p(torch.relu(states[2, 0] @ weight.T + bias)))


@pytest.mark.parametrize("chunk_tokens", [None, 16])
def test_a_training_step_equals_the_dense_paths(tiny_model_dir, chunk_tokens):
    texts = ["apples are red", "a much longer text about green pears and plums", "plums"]
    grads, weights = [], []
    for pooled in (True, False):
        model = SparseEncoder(str(tiny_model_dir), seed=3)
        assert model._pooled_head()  # the tiny BERT's output layer is a plain Linear
        model._pooled_head_ok = pooled
        model.eval()  # no dropout, so both paths see the same network; gradients still flow
        model.zero_grad()
        out, _ = model.embed_counted(texts, "doc", chunk_tokens=chunk_tokens)
        (out * torch.linspace(-1, 1, out.shape[1])).sum().backward()
        weights.append(out.detach())
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    torch.testing.assert_close(weights[0], weights[1])
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for name, g in grads[0].items():  # float32 sums in another order: close relative to the tensor's scale
        assert float((g - grads[1][name]).abs().max()) <= 1e-4 * float(grads[1][name].abs().max()) + 1e-7, name


class _Doubled(torch.nn.Linear):
    def forward(self, x):
        return 2 * super().forward(x)


def test_an_output_layer_that_is_not_a_plain_linear_falls_back_to_the_model_logits(tiny_model_dir):
    model = rw.SparseEncoder(str(tiny_model_dir))
    model.mlm.get_output_embeddings().__class__ = _Doubled  # logits transformed after the layer
    assert not model._pooled_head()
    enc = model.tokenizer(["apples are red"], return_tensors="pt")
    with torch.no_grad():
        want = torch.log1p(torch.relu(model.mlm(**enc).logits[0])).max(dim=0).values
    torch.testing.assert_close(torch.from_numpy(model.encode(["apples are red"], "doc").toarray()[0]), want)

"""Matryoshka and quantisation-aware terms: the loss of a step by hand, gradient caching equal to
the plain step, straight-through gradients, and parsing errors."""

import pytest
import torch

import rankwise as rw
from rankwise.errors import ConfigError
from rankwise.losses.embedding_terms import parse_embedding_terms, quantize
from rankwise.training.grad_cache import forward_backward
from tests.conftest import assert_grads_close, make_tiny_bert

QUERIES = ["sort a list", "read a file", "join strings", "parse json"]
DOCS = ["sorted(x)", "open(path).read()", "'-'.join(parts)", "json.loads(text)"]


def _infonce(s):
    return (s / 0.05).logsumexp(-1).mean() - (s / 0.05).diagonal().mean(), {}


@pytest.fixture(scope="module")
def still(tmp_path_factory):
    path = make_tiny_bert(tmp_path_factory.mktemp("still"), hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return rw.BiEncoder.load(path, normalize=True, query_max_length=16, doc_max_length=16)


def _grads(model):
    return {n: p.grad.clone() for n, p in model.backbone.named_parameters() if p.grad is not None}


def _step(model, spec: str):
    """The loss of one step with ``spec``'s terms, and the embeddings it saw (no grad)."""
    model.zero_grad()
    loss, info, _ = forward_backward(model, QUERIES, DOCS, _infonce, terms=parse_embedding_terms(spec))
    with torch.no_grad():
        return loss, info, model.embed(QUERIES, "query"), model.embed(DOCS, "doc")


def _prefix_scores(q, d, m):
    n = torch.nn.functional.normalize
    return n(q[:, :m], dim=-1) @ n(d[:, :m], dim=-1).T


def test_matryoshka_and_binary_loss_by_hand(still):
    spec = "matryoshka:dims=8/16,weights=1/0.5+quantize:precision=binary,weight=0.25"
    loss, info, q, d = _step(still, spec)
    want = _infonce(q @ d.T)[0] + _infonce(_prefix_scores(q, d, 8))[0] + 0.5 * _infonce(_prefix_scores(q, d, 16))[0]
    want += 0.25 * _infonce(torch.sign(q) @ torch.sign(d).T)[0]
    assert float(loss) == pytest.approx(float(want), rel=1e-5)
    assert info["loss_full_size"] == pytest.approx(float(_infonce(q @ d.T)[0]), rel=1e-5)


def test_prefix_distillation_by_hand(still):
    loss, _, q, d = _step(still, "matryoshka:dims=8,weights=0,distill=2,tau=0.1")
    p = torch.softmax(q @ d.T / 0.1, dim=-1)
    p8 = torch.softmax(_prefix_scores(q, d, 8) / 0.1, dim=-1)
    kl = (p * (p.log() - p8.log())).sum(-1).mean()  # KL(full || prefix) per query, averaged
    assert float(kl) > 1e-4  # the prefix ranks differently, so the term is not trivially zero
    assert float(loss) == pytest.approx(float(_infonce(q @ d.T)[0] + 2 * kl), rel=1e-5)


def test_prefix_distillation_leaves_the_full_size_untaught(still):
    """The full size is the teacher: the distillation term's gradient reaches only the prefix's
    dimensions."""
    q = torch.nn.functional.normalize(torch.randn(3, 6), dim=-1).requires_grad_()
    d = torch.nn.functional.normalize(torch.randn(3, 6), dim=-1)
    terms = parse_embedding_terms("matryoshka:dims=2,distill=1")
    from rankwise.losses.embedding_terms import prefix_distillation, score_stack

    prefix_distillation(score_stack(q, d, terms, normalize=True), terms).backward()
    assert q.grad[:, 2:].abs().max() == 0 and q.grad[:, :2].abs().max() > 0


def test_gradient_caching_equals_the_plain_step_with_terms(still):
    terms = parse_embedding_terms("matryoshka:dims=8/16,distill=0.5+quantize:precision=int8")
    still.zero_grad()
    forward_backward(still, QUERIES, DOCS, _infonce, terms=terms)
    plain = _grads(still)
    still.zero_grad()
    forward_backward(still, QUERIES, DOCS, _infonce, terms=terms, cache_chunk=2)
    for name, g in _grads(still).items():
        assert_grads_close(g, plain[name], name)


def test_straight_through_quantisation():
    x = torch.tensor([0.5, -0.25, 1.0], requires_grad=True)
    q = quantize(x, "int8")
    assert q.tolist() == pytest.approx([64 / 127, -32 / 127, 1.0])  # round(x / (1/127)) / 127
    q.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0]  # the identity backward
    assert quantize(torch.tensor([0.0, -3.0]), "binary").tolist() == [1.0, -1.0]


def test_bad_specs_and_families(tiny_model_dir):
    for bad, part in [
        ("matryoshka", "needs dims"),
        ("matryoshka:dims=8/x", "expected numbers"),
        ("quantize:precision=fp4", "precision 'fp4'"),
        ("pca:dims=8", "unknown term 'pca'"),
        ("matryoshka:dims=8,size=2", "no parameter 'size'"),
        ("matryoshka:dims=8,distill=1/2", "expected one number"),
        ("matryoshka:dims=8,distill=1,tau=0", "tau > 0"),
    ]:
        with pytest.raises(ConfigError, match=part):
            parse_embedding_terms(bad)
    reranker = rw.CrossEncoder(tiny_model_dir)
    examples = [rw.TrainExample(f"q{i}", [(f"d{i}", f"doc {i}")]) for i in range(4)]
    with pytest.raises(ConfigError, match="not a cross-encoder"):
        rw.train(reranker, examples, rw.TrainConfig(steps=1, batch_size=2, embedding_terms="matryoshka:dims=8"))

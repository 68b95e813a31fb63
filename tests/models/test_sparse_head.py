"""Fitting a masked-LM head the checkpoint lacked: only those parameters move, the head learns to
name tokens, the bias shift gives the asked-for number of active terms, nothing global changes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from rankwise.errors import RankwiseError
from rankwise.models.sparse_encoder import SparseEncoder, mean_nonzeros
from rankwise.models.sparse_head import bm25_term_weights, fit_fresh_head
from tests.models.test_sparse_pooling import _Doubled

DOCS = [
    "apples are red fruit that grow on trees",
    "the ocean is deep and blue",
    "python parses source code into a syntax tree",
    "trains run on rails between cities",
    "violins have four strings and a bow",
    "volcanoes erupt hot lava and ash",
]


def _naming_accuracy(model: SparseEncoder) -> float:
    batch = model.tokenizer(DOCS, padding=True, return_tensors="pt")
    special = torch.tensor(model.tokenizer.all_special_ids)
    keep = batch["attention_mask"].bool() & ~torch.isin(batch["input_ids"], special)
    with torch.no_grad():
        logits = model.mlm.get_output_embeddings()(model.eval().head_states(dict(batch))[keep])
    return float((logits.argmax(1) == batch["input_ids"][keep]).float().mean())


def test_a_checkpoint_without_a_head_lists_it_as_fresh_and_a_saved_model_does_not(tiny_model_dir, tmp_path):
    model = SparseEncoder(str(tiny_model_dir))
    assert set(model.fresh_parameters) == {
        "cls.predictions.bias",
        "cls.predictions.transform.dense.weight",
        "cls.predictions.transform.dense.bias",
        "cls.predictions.transform.LayerNorm.weight",
        "cls.predictions.transform.LayerNorm.bias",
    }
    assert SparseEncoder(str(model.save(tmp_path / "m"))).fresh_parameters == ()


def test_only_the_fresh_parameters_move_and_the_head_learns_to_name_tokens(tiny_model_dir):
    model = SparseEncoder(str(tiny_model_dir), seed=1)
    before = {n: p.detach().clone() for n, p in model.mlm.named_parameters()}
    fresh = set(model.fresh_parameters)
    accuracy = _naming_accuracy(model)
    rng = torch.get_rng_state()
    fit = fit_fresh_head(model, DOCS, steps=80, texts_per_step=6, lr=1e-2)
    assert torch.equal(torch.get_rng_state(), rng)  # a resumed run's random state is untouched
    for n, p in model.mlm.named_parameters():
        assert torch.equal(p, before[n]) != (n in fresh), n
        assert p.requires_grad and p.grad is None  # as they were: nothing left for a training step
    assert model.fresh_parameters == ()
    assert accuracy < 0.05 < 0.5 < _naming_accuracy(model)
    assert fit.accuracy > 0.5 and fit.loss < math.log(model.vocab_size) - 1  # below a uniform guess


@pytest.mark.parametrize("expansion", [1.0, 3.0])
def test_the_shift_leaves_the_asked_for_active_terms_per_document(tiny_model_dir, expansion):
    model = SparseEncoder(str(tiny_model_dir), seed=2)
    fit = fit_fresh_head(model, DOCS, steps=5, texts_per_step=6, expansion=expansion)
    special = set(model.tokenizer.all_special_ids)
    distinct = [len(set(x) - special) for x in model.token_ids(DOCS, "doc")]
    assert fit.nonzeros == pytest.approx(expansion * sum(distinct) / len(DOCS))
    # the sample is every document: exactly round(target * n) - 1 terms are above the shift (the
    # k-th largest itself lands on zero), so the mean is within one term per corpus of the target
    assert mean_nonzeros(model.encode(DOCS, "doc")) == pytest.approx(fit.nonzeros, abs=1.0 / len(DOCS) + 1e-6)


def test_the_shift_is_the_same_constant_on_every_vocabulary_bias(tiny_model_dir):
    model = SparseEncoder(str(tiny_model_dir), seed=3)
    head = model.mlm.get_output_embeddings()
    fit = fit_fresh_head(model, DOCS, steps=0)  # no fitting: the shift alone
    drawn = SparseEncoder(str(tiny_model_dir), seed=3).mlm.get_output_embeddings().bias
    torch.testing.assert_close(head.bias.detach(), drawn.detach() + fit.shift)
    # and naming the token is unchanged by a constant added to every logit
    x = torch.randn(4, head.in_features)
    torch.testing.assert_close(F.softmax(head(x), -1), F.softmax(x @ head.weight.T + drawn, -1))


def test_a_model_with_nothing_fresh_is_refused(tiny_model_dir, tmp_path):
    saved = SparseEncoder(str(SparseEncoder(str(tiny_model_dir)).save(tmp_path / "m")))
    with pytest.raises(RankwiseError, match="no fresh masked-LM parameters"):
        fit_fresh_head(saved, DOCS)


def test_an_output_layer_whose_logits_are_transformed_is_refused(tiny_model_dir):
    model = SparseEncoder(str(tiny_model_dir))
    model.mlm.get_output_embeddings().__class__ = _Doubled  # the fit would fit another function
    with pytest.raises(RankwiseError, match="head_fit_steps=0"):
        fit_fresh_head(model, DOCS)


def _bm25_error(model: SparseEncoder) -> float:
    ids = model.token_ids(DOCS, "doc")
    goal = torch.zeros(len(DOCS), model.vocab_size)
    for row, terms in enumerate(bm25_term_weights(ids, set(model.tokenizer.all_special_ids))):
        goal[row, list(terms)] = torch.tensor(list(terms.values()))
    with torch.no_grad():
        return float(((model.eval()._vectors(ids, "doc") - goal) ** 2).sum(1).mean())


def test_bm25_shaping_moves_the_pooled_document_weights_toward_bm25_and_only_the_fresh_parameters(tiny_model_dir):
    plain, shaped = (SparseEncoder(str(tiny_model_dir), seed=3, inference_free=True) for _ in range(2))
    fresh = set(shaped.fresh_parameters)
    fit_fresh_head(plain, DOCS, steps=40, texts_per_step=6, lr=1e-2, seed=5)
    before = {n: p.detach().clone() for n, p in shaped.mlm.named_parameters()}
    fit = fit_fresh_head(shaped, DOCS, steps=40, texts_per_step=6, lr=1e-2, seed=5, bm25_steps=60, bm25_lr=1e-2)
    assert fit.bm25_loss is not None and math.isfinite(fit.bm25_loss)
    assert _bm25_error(shaped) < 0.5 * _bm25_error(plain)
    for n, p in shaped.mlm.named_parameters():
        assert torch.equal(p, before[n]) != (n in fresh), n
        assert p.requires_grad and p.grad is None

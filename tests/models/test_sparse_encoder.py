"""The learned sparse encoder: sentence-transformers round trips, SPLADE's formula, the query table."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rankwise as rw
from rankwise.data import examples_from_qrels, load_beir
from rankwise.models.sparse_encoder import SparseEncoder, bm25_idf

QUERIES = ["how to sort a list", "open a file in python"]
DOCS = ["sorted(list) returns a new sorted list", "use open() to read files", "the weather is nice"]


def _peer_scores(folder) -> np.ndarray:
    from sentence_transformers import SparseEncoder as PeerSparse

    peer = PeerSparse(str(folder), device="cpu")
    return peer.similarity(peer.encode_query(QUERIES), peer.encode_document(DOCS)).to_dense().numpy()


def _train(model, toy_beir, tmp_path, **kw):
    examples = examples_from_qrels(load_beir(toy_beir, "train"))
    cfg = rw.TrainConfig(
        **({"steps": 2, "batch_size": 4, "lr": 1e-3, "checkpoint_every": 100, "warmup_ratio": 0.0} | kw)
    )
    return rw.train(model, examples, cfg, tmp_path / "run")


@pytest.mark.parametrize("inference_free", [False, True])
def test_saved_folder_scores_the_same_in_sentence_transformers(inference_free, toy_beir, tmp_path):
    model = rw.SparseEncoder(inference_free=inference_free)  # the packaged backbone by default
    for when in ("fresh", "trained"):
        if when == "trained":
            _train(model, toy_beir, tmp_path)
        model.save(tmp_path / when)
        ours = model.score(QUERIES, DOCS)
        np.testing.assert_allclose(ours, _peer_scores(tmp_path / when), rtol=1e-5)
        again = rw.SparseEncoder.load(tmp_path / when)
        np.testing.assert_allclose(again.score(QUERIES, DOCS), ours, rtol=1e-5)
        assert again.config.inference_free is inference_free


def test_splade_weights_follow_the_formula(tiny_model_dir):
    """w_j = max_t log(1 + relu(logit_tj)) over real tokens, by hand from the masked-LM logits."""
    model = SparseEncoder(str(tiny_model_dir))
    text = "apples are red"
    enc = model.tokenizer([text], return_tensors="pt")
    with torch.no_grad():
        logits = model.mlm(**enc).logits[0]
        by_hand = torch.log1p(torch.relu(logits)).max(dim=0).values.numpy()
    got = model.encode([text], "doc").toarray()[0]
    np.testing.assert_allclose(got, by_hand, rtol=1e-5, atol=1e-6)
    # padding changes nothing: the same text next to a long one
    longer = model.encode([text, "a much longer text " * 5], "doc").toarray()[0]
    np.testing.assert_allclose(longer, got, rtol=1e-5, atol=1e-6)


def test_inference_free_queries_are_their_terms_idf(tiny_model_dir):
    docs = ["red apples", "red wine", "green tea"]
    model = SparseEncoder(str(tiny_model_dir), inference_free=True)
    idf = model.set_idf(docs)
    ids = model.tokenizer(["red red apples"], add_special_tokens=False)["input_ids"][0]
    q = model.encode(["red red apples"], "query").toarray()[0]
    expected = np.zeros_like(q)
    expected[ids] = idf[ids].numpy()  # presence, not counts: "red" once
    np.testing.assert_allclose(q, expected, rtol=1e-6)
    red = model.tokenizer.convert_tokens_to_ids("red")
    apples = model.tokenizer.convert_tokens_to_ids("apples")
    assert idf[apples] > idf[red] > 0  # rarer terms weigh more


def test_bm25_idf_by_hand():
    idf = bm25_idf([[1, 2], [2]], 4)
    n, df = 2, np.array([0, 1, 2, 0])
    np.testing.assert_allclose(idf.numpy(), np.log1p((n - df + 0.5) / (df + 0.5)), rtol=1e-6)


def test_training_sparsifies_and_the_regulariser_warms_up(tiny_model_dir, toy_beir, tmp_path):
    """FLOPS with a large weight drives the documents' non-zeros down; the info logs both sides."""
    model = SparseEncoder(str(tiny_model_dir))
    before = model.encode(DOCS, "doc").getnnz(axis=1).mean()
    res = _train(model, toy_beir, tmp_path, sparsity="flops:query=1,doc=1,warmup=0", lr=5e-3)
    after = model.encode(DOCS, "doc").getnnz(axis=1).mean()
    assert after < before
    from rankwise.losses.sparsity import Flops

    reg = Flops(query=1.0, doc=2.0, warmup=0.5)
    assert reg.weight(2.0, 5, 100) == pytest.approx(2.0 * (5 / 50) ** 2) and reg.weight(2.0, 60, 100) == 2.0
    assert all(np.isfinite(h.loss) for h in res.history)


def test_idf_flops_starts_the_table_at_the_training_documents_idf(tiny_model_dir, toy_beir, tmp_path):
    model = SparseEncoder(str(tiny_model_dir), inference_free=True)
    _train(model, toy_beir, tmp_path, lr=1e-9)  # a negligible step: the table stays at its start
    texts = [d.full_text for d in load_beir(toy_beir, "train").corpus.values()]
    positives = {t for ex in examples_from_qrels(load_beir(toy_beir, "train")) for _, t in ex.positives}
    ids = model.tokenizer(sorted(positives), add_special_tokens=False, truncation=True)["input_ids"]
    expected = bm25_idf(ids, model.vocab_size)
    assert len(texts) > len(positives)
    np.testing.assert_allclose(model.query_weights.detach().numpy(), expected.numpy(), rtol=1e-4, atol=1e-6)


def test_a_fresh_head_is_drawn_from_the_seed_not_the_global_state(tiny_model_dir):
    torch.manual_seed(1)
    a = SparseEncoder(str(tiny_model_dir)).score(QUERIES, DOCS)
    torch.manual_seed(2)
    np.testing.assert_array_equal(SparseEncoder(str(tiny_model_dir)).score(QUERIES, DOCS), a)
    assert not np.array_equal(SparseEncoder(str(tiny_model_dir), seed=5).score(QUERIES, DOCS), a)

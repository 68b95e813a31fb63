"""The multi-vector encoder: sentence-transformers round trips, MaxSim, query expansion, XTR."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rankwise as rw
from rankwise.data import examples_from_qrels, load_beir
from rankwise.models.multi_vector import MultiVectorEncoder, maxsim, xtr_scores

QUERIES = ["how to sort a list", "open a file in python"]
DOCS = ["sorted(list) returns, a new sorted list.", "use open() to read files!", "the weather is nice"]


def _peer_scores(folder) -> np.ndarray:
    from sentence_transformers import MultiVectorEncoder as PeerMultiVector

    peer = PeerMultiVector(str(folder), device="cpu")
    return peer.similarity(peer.encode_query(QUERIES), peer.encode_document(DOCS)).numpy()


@pytest.mark.parametrize("scoring", ["colbert", "xtr"])
def test_saved_folder_scores_the_same_in_sentence_transformers(scoring, toy_beir, tmp_path):
    model = rw.MultiVectorEncoder(scoring=scoring)
    examples = examples_from_qrels(load_beir(toy_beir, "train"))
    for when in ("fresh", "trained"):
        if when == "trained":
            rw.train(
                model, examples, rw.TrainConfig(steps=2, batch_size=4, lr=1e-3, checkpoint_every=100), tmp_path / "run"
            )
        model.save(tmp_path / when)
        ours = model.score(QUERIES, DOCS)
        np.testing.assert_allclose(ours, _peer_scores(tmp_path / when), rtol=1e-5)
        again = rw.MultiVectorEncoder.load(tmp_path / when)
        np.testing.assert_allclose(again.score(QUERIES, DOCS), ours, rtol=1e-5)
        assert again.config.scoring == scoring


def test_queries_are_expanded_with_masks_and_document_punctuation_skipped(tiny_model_dir):
    model = MultiVectorEncoder(str(tiny_model_dir))
    q = model.encode(["apples"], "query")[0]
    assert q.shape == (32, 128)  # [CLS] apples [SEP] and 29 scored [MASK] positions
    d = model.encode(["apples, pears!"], "doc")[0]
    n_tokens = len(model.tokenizer("apples, pears!")["input_ids"])
    assert d.shape[0] == n_tokens - 2  # "," and "!" dropped
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, rtol=1e-5)


def test_training_scores_equal_encoded_maxsim(tiny_model_dir):
    """The batch scores (padded, chunked) equal MaxSim of the per-text vectors."""
    model = MultiVectorEncoder(str(tiny_model_dir))
    with torch.no_grad():
        q = model.embed_counted(QUERIES, "query")[0]
        d = model.embed_counted(DOCS, "doc", chunk_tokens=16)[0]
        np.testing.assert_allclose(maxsim(q, d).numpy(), model.score(QUERIES, DOCS), rtol=1e-5)


def test_xtr_keeps_only_each_query_tokens_top_k_of_the_batch():
    g = torch.Generator().manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(2, 3, 4, generator=g), dim=-1)
    d = torch.nn.functional.normalize(torch.randn(5, 6, 4, generator=g), dim=-1)
    np.testing.assert_allclose(xtr_scores(q, d, k=30).numpy(), maxsim(q, d).numpy() / 3, rtol=1e-5)  # k = all tokens
    got = xtr_scores(q, d, k=2).numpy()
    sims = torch.einsum("qid,njd->qinj", q, d).reshape(2, 3, 30)
    for a in range(2):  # by hand: each query token's top 2 tokens of the whole batch
        kth = sims[a].topk(2, dim=-1).values[:, -1:]
        for b in range(5):
            kept = (sims[a] >= kth).reshape(3, 5, 6)[:, b]
            vals = sims[a].reshape(3, 5, 6)[:, b]
            hit = kept.any(-1)
            best = torch.where(kept, vals, torch.tensor(-9.0)).amax(-1)
            want = float((best * hit).sum() / max(int(hit.sum()), 1))
            assert got[a, b] == pytest.approx(want, abs=1e-6)

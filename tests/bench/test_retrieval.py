"""benchmarks/_retrieval.py: pooled AUC by hand; kept pool scores keep every AUC exact; a memo of corpus embeddings changes no figure and
encodes a corpus once per model weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks._retrieval import measure, pooled_auc, shrink_pools
from rankwise.data import load_beir  # noqa: E402
from rankwise.models import BiEncoder  # noqa: E402


def test_pooled_auc_counts_pairs_across_queries():
    # q1: positive 0.9 over negatives 0.5, 0.95; q2: positive 0.6 over negative 0.4.
    # Pooled pairs: 0.9 beats 0.5, 0.4 (not 0.95); 0.6 beats 0.5, 0.4 (not 0.95): 4 of 6.
    pools = {"q1": ([0.9], [0.5, 0.95]), "q2": ([0.6], [0.4])}
    assert pooled_auc(pools, ["q1", "q2"]) == pytest.approx(4 / 6)
    assert pooled_auc(pools, ["q1", "q1"]) == pytest.approx(0.5)  # a repeated query counts again


def test_memo_reuses_embeddings_only_for_the_same_weights(toy_beir, tiny_model_dir):
    model = BiEncoder.load(str(tiny_model_dir))
    train, test = load_beir(toy_beir, "train"), load_beir(toy_beir, "test")  # one corpus, two splits
    calls: list[str] = []
    encode = model.encode

    def counting(texts, kind="doc", **kw):
        calls.append(kind)
        return encode(texts, kind, **kw)

    model.encode = counting
    plain_train, _ = measure(model, train, 5)
    plain_test, plain_q = measure(model, test, 5)
    calls.clear()
    memo: dict = {}
    memo_train, _ = measure(model, train, 5, memo=memo)
    memo_test, memo_q = measure(model, test, 5, memo=memo)
    assert calls.count("doc") == 1  # the second split found the corpus encoded
    assert memo_train == pytest.approx(plain_train) and memo_test == pytest.approx(plain_test)
    assert memo_q["pools"] == plain_q["pools"]

    with torch.no_grad():  # other weights: the corpus is encoded again and replaces the old entry
        next(model.backbone.parameters()).add_(0.5)
    calls.clear()
    measure(model, test, 5, memo=memo)
    assert calls.count("doc") == 1 and len(memo) == 1


def test_kept_pool_scores_keep_every_auc_exact():
    rng = np.random.default_rng(0)
    # float32 scores as the index returns them, with near-ties a shorter rounding would merge
    base = rng.random(200).astype(np.float32)
    pools = {
        f"q{i}": [base[i : i + 2].tolist(), np.nextafter(base[i : i + 40], 2, dtype=np.float32).tolist()]
        for i in range(50)
    }
    result = {"per_query": {"ndcg@10": {"q0": 1.0}, "pools": pools}}
    kept = shrink_pools(result)["per_query"]["pools"]
    assert len(str(kept)) < len(str(pools))
    for q in pools:
        for ours, theirs in zip(kept[q], pools[q]):
            assert np.array_equal(np.float32(ours), np.float32(theirs))
    qids = list(pools)
    assert pooled_auc(kept, qids) == pooled_auc(pools, qids)

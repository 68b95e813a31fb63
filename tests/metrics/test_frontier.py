"""The frontier's per-query values: each cell's nDCG@10 is their mean, and the full-size fp32 cell's
are those of exact dense retrieval with the same model."""

import numpy as np
import pytest

import rankwise as rw
from rankwise.data import load_beir
from rankwise.metrics.frontier import frontier
from rankwise.metrics.ranking import evaluate_per_query


def test_per_query_values_average_to_each_cell_and_match_dense_retrieval(toy_beir, tiny_model_dir):
    model = rw.BiEncoder.load(tiny_model_dir)
    ds = load_beir(toy_beir, "test").own_split()
    res = frontier(model, ds, [8], ["fp32", "binary"], k=8)
    size = model.dim
    assert set(res.per_query) == {"8/fp32", "8/binary", f"{size}/fp32"}
    for name, values in res.per_query.items():
        dims, precision = name.split("/")
        assert set(values) == set(ds.qrels)
        assert np.mean(list(values.values())) == pytest.approx(res.cells[int(dims)][precision]["ndcg@10"], abs=1e-9)
    dense = evaluate_per_query(ds.qrels, rw.evaluate_model(model, ds, 8).run, ["ndcg@10"])["ndcg@10"]
    assert res.per_query[f"{size}/fp32"] == pytest.approx(dense, abs=1e-6)

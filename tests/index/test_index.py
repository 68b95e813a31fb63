import numpy as np

from rankwise.index import BM25Index, FlatIndex
from rankwise.index.bm25 import split_identifiers


def test_flat_search_equals_brute_force():
    rng = np.random.default_rng(0)
    docs, queries = rng.normal(size=(300, 16)).astype(np.float32), rng.normal(size=(37, 16)).astype(np.float32)
    index = FlatIndex(docs, [f"d{i}" for i in range(300)])
    idx, scores = index.search(queries, 10, batch_size=8)
    full = queries @ docs.T
    expect = np.argsort(-full, axis=1)[:, :10]
    np.testing.assert_array_equal(idx, expect)
    np.testing.assert_allclose(scores, np.take_along_axis(full, expect, 1), rtol=1e-5)
    run = index.search_run([f"q{i}" for i in range(37)], queries, 5)
    assert list(run["q3"]) == [f"d{j}" for j in expect[3, :5]]
    assert index.search(queries[:2], 1000)[0].shape == (2, 300)  # k capped at the index size


def test_bm25_ranks_the_matching_document_first():
    texts = ["the cat sat on the mat", "dogs chase cats", "stock markets fell today", "read_file opens a path"]
    index = BM25Index(texts, ["a", "b", "c", "d"], code=True)
    run = index.search_run(["q1", "q2"], ["markets today", "read file"], 3)
    assert next(iter(run["q1"])) == "c" and list(run["q1"]) == ["c"]  # only matching docs are kept
    assert next(iter(run["q2"])) == "d"
    assert split_identifiers("readFile_fast") == "read File fast"

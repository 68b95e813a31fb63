import numpy as np
import pytest

from rankwise.data.trec import ranked_run
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
    run = ranked_run([f"q{i}" for i in range(37)], index.ids, *index.search(queries, 5))
    assert list(run["q3"]) == [f"d{j}" for j in expect[3, :5]]
    assert index.search(queries[:2], 1000)[0].shape == (2, 300)  # k capped at the index size


def test_bm25_ranks_the_matching_document_first():
    texts = ["the cat sat on the mat", "dogs chase cats", "stock markets fell today", "read_file opens a path"]
    index = BM25Index(texts, ["a", "b", "c", "d"], code=True)
    run = ranked_run(["q1", "q2"], index.ids, *index.search(["markets today", "read file"], 3))
    assert next(iter(run["q1"])) == "c" and list(run["q1"]) == ["c"]  # only matching docs are kept
    assert next(iter(run["q2"])) == "d"
    assert split_identifiers("readFile_fast") == "read File fast"


def test_bm25_scores_any_text_under_the_corpus_statistics():
    texts = ["the cat sat on the mat", "dogs chase cats and the cat", "stock markets fell today", "cat cat mat", ""]
    index = BM25Index(texts, ["a", "b", "c", "d", "e"])
    for query in ["cat mat", "cats today markets", "the unknown words"]:
        np.testing.assert_allclose(index.score_texts(query, texts), index.score_all(query), rtol=1e-5, atol=1e-6)
    # a text outside the corpus, by hand: N 5, df(cat) 3, df(mat) 2, avgdl (3+4+4+3+0)/5 = 2.8
    got = index.score_texts("cat mat", ["a cat on a mat with a cat"])[0]  # tokens: cat mat cat (stopwords out)
    norm = 1.5 * (1 - 0.75 + 0.75 * 3 / 2.8)
    idf = {t: np.log(1 + (5 - df + 0.5) / (df + 0.5)) for t, df in (("cat", 3), ("mat", 2))}
    assert got == pytest.approx(idf["cat"] * 2 / (2 + norm) + idf["mat"] * 1 / (1 + norm), rel=1e-6)


def test_corpus_embeddings_are_cached_by_model_weights_and_texts(tiny_model_dir, toy_beir, tmp_path, monkeypatch):
    import torch

    from rankwise.data import load_beir
    from rankwise.index.retrieve import dense_run
    from rankwise.models import BiEncoder

    monkeypatch.setenv("RANKWISE_CACHE", str(tmp_path / "cache"))
    ds = load_beir(toy_beir, "test")
    model = BiEncoder.load(str(tiny_model_dir))
    first = dense_run(model, ds, 5, show_progress=False, cache=True)
    calls = []
    real = model.encode
    monkeypatch.setattr(
        model, "encode", lambda texts, kind="doc", **kw: (calls.append(kind), real(texts, kind, **kw))[1]
    )
    assert dense_run(model, ds, 5, show_progress=False, cache=True) == first
    assert calls == ["query"]  # the corpus came from the cache
    with torch.no_grad():  # other weights: another key, the corpus is encoded again
        next(model.backbone.parameters()).add_(0.1)
    dense_run(model, ds, 5, show_progress=False, cache=True)
    assert calls.count("doc") == 1 and len(list((tmp_path / "cache" / "embeddings").iterdir())) == 2

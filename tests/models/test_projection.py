"""The principal-axes rotation and the Dense module a dual encoder saves it as."""

import numpy as np
import pytest
import torch

import rankwise as rw
from rankwise.data.examples import TrainExample
from rankwise.errors import RankwiseError
from rankwise.index.retrieve import embeddings_key
from rankwise.models import BiEncoder
from rankwise.models.projection import principal_rotation

CORPUS = [f"{verb} the {noun} with {tool}" for verb in ("open", "parse", "sort", "read", "write") for noun in
          ("file", "list", "tree", "string") for tool in ("care", "a loop", "numpy")]  # fmt: skip
QUERIES = ["how to sort a list", "read a file", "parse a tree of nodes"]


def _cos(q: np.ndarray, d: np.ndarray) -> np.ndarray:
    q, d = q / np.linalg.norm(q, axis=1, keepdims=True), d / np.linalg.norm(d, axis=1, keepdims=True)
    return q @ d.T


def test_principal_rotation_is_orthogonal_ordered_by_variance_and_composes():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6)) * np.array([0.1, 3.0, 0.5, 2.0, 1.0, 0.2])  # variance out of order
    layer = principal_rotation(x)
    w = layer.weight.detach().double().numpy()
    np.testing.assert_allclose(w @ w.T, np.eye(6), atol=1e-6)
    y = x @ w.T
    assert list(np.argsort(-y.var(axis=0))) == list(range(6))  # axis 0 holds the most variance
    np.testing.assert_allclose(y.var(axis=0)[:2], np.sort(x.var(axis=0))[::-1][:2], rtol=0.05)
    before = torch.nn.Linear(6, 6)
    composed = principal_rotation(x, before)
    with torch.no_grad():
        inputs = torch.randn(5, 6)
        np.testing.assert_allclose(composed(inputs), before(inputs) @ layer.weight.T, atol=1e-5)
    with pytest.raises(RankwiseError, match="at least two"):
        principal_rotation(x[:1])


def test_rotation_keeps_full_size_cosines_and_gives_prefixes_the_most_variance(tiny_model_dir):
    model = BiEncoder.load(tiny_model_dir, normalize=True, doc_max_length=32)
    q0, d0 = model.encode(QUERIES, "query"), model.encode(CORPUS, "doc")
    key0 = embeddings_key(model, CORPUS)
    model.rotate_to_principal_axes(CORPUS)
    q1, d1 = model.encode(QUERIES, "query"), model.encode(CORPUS, "doc")
    np.testing.assert_allclose(q1 @ d1.T, q0 @ d0.T, atol=1e-5)  # orthogonal: every cosine as before
    k = 4
    assert d1[:, :k].var(axis=0).sum() > d0[:, :k].var(axis=0).sum()  # the first k axes hold more
    assert d1[:, :k].var(axis=0).sum() >= np.sort(d0.var(axis=0))[::-1][:k].sum() - 1e-6  # no k axes hold more
    assert embeddings_key(model, CORPUS) != key0  # cached corpus embeddings are not reused
    assert model.dim == d0.shape[1]


def test_a_rotated_model_trains_saves_and_loads_in_sentence_transformers(tiny_model_dir, tmp_path):
    st = pytest.importorskip("sentence_transformers")
    model = BiEncoder.load(tiny_model_dir, normalize=True, query_max_length=16, doc_max_length=32)
    model.rotate_to_principal_axes(CORPUS)
    start = model.projection.weight.detach().clone()
    examples = [TrainExample(q, [(d, d)]) for q, d in zip(QUERIES, CORPUS[::10])]
    rw.train(model, examples, rw.TrainConfig(steps=2, batch_size=3, lr=1e-2, embedding_terms="matryoshka:dims=4"))
    assert not torch.equal(model.projection.weight, start)  # the rotation trains with the encoder
    path = model.save(tmp_path / "rotated")
    theirs = st.SentenceTransformer(str(path), device="cpu")
    np.testing.assert_allclose(theirs.encode_document(CORPUS), model.encode(CORPUS, "doc"), atol=1e-5)
    np.testing.assert_allclose(theirs.encode_query(QUERIES), model.encode(QUERIES, "query"), atol=1e-5)
    again = BiEncoder.load(path)
    np.testing.assert_allclose(again.encode(CORPUS, "doc"), model.encode(CORPUS, "doc"), atol=1e-6)
    with pytest.raises(RankwiseError, match="untied towers with a projection"):
        again.untie()


def test_principal_axes_in_the_config_rotates_on_the_training_documents_first(tiny_model_dir, tmp_path):
    from rankwise.errors import ConfigError

    docs = CORPUS[:9]
    examples = [TrainExample(f"q {d}", [(f"d{i}", d)]) for i, d in enumerate(docs)]
    model = BiEncoder.load(tiny_model_dir, normalize=True, doc_max_length=32)
    reference = BiEncoder.load(tiny_model_dir, normalize=True, doc_max_length=32).rotate_to_principal_axes(docs)
    cfg = rw.TrainConfig(steps=1, batch_size=3, lr=1e-2, warmup_ratio=1.0, principal_axes=True)  # step 1 at lr 0
    rw.train(model, examples, cfg)
    torch.testing.assert_close(model.projection.weight, reference.projection.weight)  # the rotation as made
    # killed after step 2 of 3 and resumed: the run rebuilds the same module and ends as an uninterrupted one
    longer = cfg.model_copy(update={"steps": 3, "warmup_ratio": 0.0, "checkpoint_every": 1})
    full = BiEncoder.load(tiny_model_dir, normalize=True, doc_max_length=32)
    rw.train(full, examples, longer, tmp_path / "full")
    part = BiEncoder.load(tiny_model_dir, normalize=True, doc_max_length=32)
    rw.train(part, examples, longer, tmp_path / "part", stop_after=2)
    resumed = BiEncoder.load(tiny_model_dir, normalize=True, doc_max_length=32)
    assert rw.train(resumed, examples, longer, tmp_path / "part", resume=True).resumed_from == 2
    torch.testing.assert_close(resumed.projection.weight, full.projection.weight)
    torch.testing.assert_close(resumed.encode(docs, "doc"), full.encode(docs, "doc"))
    cross = rw.CrossEncoder(str(tiny_model_dir))
    with pytest.raises(ConfigError, match="principal_axes apply to a family with embeddings"):
        rw.train(cross, examples, cfg)

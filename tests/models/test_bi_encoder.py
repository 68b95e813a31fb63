import json

import numpy as np
import pytest
import torch

from rankwise.errors import RankwiseError
from rankwise.models import BiEncoder

TEXTS = [
    "a short one",
    "def parse(source):\n    return ast.parse(source, mode='exec')",
    "x " * 400,
    "Return the sum of two numbers.",
]


def _reference_embeddings(model: BiEncoder, texts, kind="doc"):
    """One text at a time, no padding, no sorting: what batched encoding must equal."""
    return np.stack([model.embed([t], kind).detach().numpy()[0] for t in texts])


def test_encode_sorts_and_pads_without_changing_results(tiny_model_dir):
    model = BiEncoder.load(tiny_model_dir, normalize=True, doc_max_length=64).eval()
    got = model.encode(TEXTS, "doc", batch_size=2)
    with torch.no_grad():
        ref = _reference_embeddings(model, TEXTS)
    np.testing.assert_allclose(got, ref, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_mean_pooling_ignores_padding(tiny_model_dir):
    model = BiEncoder.load(tiny_model_dir, normalize=False)
    hidden = torch.arange(12, dtype=torch.float32).reshape(1, 3, 4)
    pooled = model.pool(hidden, torch.tensor([[1, 1, 0]]))
    assert torch.equal(pooled, hidden[0, :2].mean(0, keepdim=True))


def test_query_and_doc_lengths_truncate_separately(tiny_model_dir):
    model = BiEncoder.load(tiny_model_dir, query_max_length=8, doc_max_length=32)
    assert model.tokenize(["w " * 100], "query")["input_ids"].shape[1] == 8
    assert model.tokenize(["w " * 100], "doc")["input_ids"].shape[1] == 32


def test_saved_folder_loads_in_sentence_transformers(tiny_model_dir, tmp_path):
    st = pytest.importorskip("sentence_transformers")
    model = BiEncoder.load(tiny_model_dir, normalize=True, query_max_length=16, doc_max_length=48)
    path = model.save(tmp_path / "saved")
    ours = model.encode(TEXTS, "doc")
    theirs = st.SentenceTransformer(str(path), device="cpu").encode(TEXTS, convert_to_numpy=True)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    again = BiEncoder.load(path)  # rankwise's own lengths survive the round trip
    assert (again.config.query_max_length, again.config.doc_max_length, again.config.normalize) == (16, 48, True)
    np.testing.assert_allclose(again.encode(TEXTS, "doc"), ours, atol=1e-6)


def test_bad_model_path_is_a_clear_error(tmp_path):
    with pytest.raises(RankwiseError, match="cannot load model"):
        BiEncoder.load(tmp_path)  # an empty folder
    with pytest.raises(RankwiseError, match="not a folder"):
        BiEncoder.load(str(tmp_path / "nothing-here"))


@pytest.mark.slow
def test_default_model_matches_sentence_transformers_and_survives_save(tmp_path):
    st = pytest.importorskip("sentence_transformers")
    from rankwise.models import default_model_path

    model = BiEncoder.load()
    assert model.config.normalize and model.config.pooling == "mean" and model.config.doc_max_length == 256
    ours = model.encode(TEXTS, "doc")
    ref = st.SentenceTransformer(str(default_model_path()), device="cpu").encode(TEXTS, convert_to_numpy=True)
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    saved = st.SentenceTransformer(str(model.save(tmp_path / "m")), device="cpu").encode(TEXTS, convert_to_numpy=True)
    np.testing.assert_allclose(saved, ours, atol=1e-5)


def test_hub_name_offline_without_cache_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(RankwiseError, match="cannot load model 'someone/some-model' from the Hugging Face hub"):
        BiEncoder.load("someone/some-model")


def test_prompts_apply_in_training_and_survive_a_round_trip_through_sentence_transformers(tiny_model_dir, tmp_path):
    """A model trained with E5-style prompts: they change the embeddings, the saved folder names them, and
    sentence-transformers' encode_query / encode_document apply them to give rankwise's vectors."""
    st = pytest.importorskip("sentence_transformers")
    import rankwise as rw
    from rankwise.data.examples import TrainExample

    model = BiEncoder.load(tiny_model_dir, query_max_length=32, doc_max_length=48)
    plain = model.encode(TEXTS, "query")
    examples = [TrainExample(f"how to {t}", [(t, f"{t} does it")]) for t in ("sort", "parse", "open", "read")]
    cfg = rw.TrainConfig(steps=2, batch_size=2, query_prompt="query: ", doc_prompt="passage: ")
    rw.train(model, examples, cfg)
    assert (model.config.query_prompt, model.config.doc_prompt) == ("query: ", "passage: ")
    assert model.token_ids(["x"], "query")[0] == model.tokenizer(["query: x"])["input_ids"][0]  # what training encodes
    path = model.save(tmp_path / "prompted")
    theirs = st.SentenceTransformer(str(path), device="cpu")
    assert theirs.prompts == {"query": "query: ", "document": "passage: "}
    short = [t for t in TEXTS if len(t) < 100]  # sentence-transformers has one max length (the doc side's)
    for side, encode in (("query", theirs.encode_query), ("doc", theirs.encode_document)):
        np.testing.assert_allclose(model.encode(short, side), encode(short, convert_to_numpy=True), atol=1e-5)
    again = BiEncoder.load(path)
    assert (again.config.query_prompt, again.config.doc_prompt) == ("query: ", "passage: ")
    assert not np.allclose(BiEncoder.load(path, query_prompt="").encode(TEXTS, "query"), again.encode(TEXTS, "query"))
    assert plain.shape == again.encode(TEXTS, "query").shape


def test_untied_towers_train_apart_and_load_in_sentence_transformers_router(tiny_model_dir, tmp_path):
    st = pytest.importorskip("sentence_transformers")
    import rankwise as rw
    from rankwise.data.examples import TrainExample

    model = BiEncoder.load(tiny_model_dir, normalize=True, query_max_length=8, doc_max_length=48)
    examples = [TrainExample(f"how to {t}", [(t, f"{t} does it")]) for t in ("sort", "parse", "open", "read")]
    rw.train(model, examples, rw.TrainConfig(steps=2, batch_size=2, lr=1e-3, untie=True))
    assert model.untied
    q = dict(model.query_backbone.named_parameters())
    assert any(not torch.equal(p, q[n]) for n, p in model.backbone.named_parameters())  # the towers moved apart
    path = model.save(tmp_path / "two-tower")
    assert json.loads((path / "modules.json").read_text())[0]["type"].endswith("Router")
    theirs = st.SentenceTransformer(str(path), device="cpu")
    # the Router keeps each tower's own max length, so even long queries match (8 tokens)
    np.testing.assert_allclose(
        theirs.encode_query(TEXTS, convert_to_numpy=True), model.encode(TEXTS, "query"), atol=1e-5
    )
    np.testing.assert_allclose(
        theirs.encode_document(TEXTS, convert_to_numpy=True), model.encode(TEXTS, "doc"), atol=1e-5
    )
    again = BiEncoder.load(path)
    assert again.untied and (again.config.query_max_length, again.config.doc_max_length) == (8, 48)
    np.testing.assert_allclose(again.encode(TEXTS, "query"), model.encode(TEXTS, "query"), atol=1e-6)
    np.testing.assert_allclose(again.encode(TEXTS, "doc"), model.encode(TEXTS, "doc"), atol=1e-6)


def test_an_architecture_without_sdpa_loads_with_its_own_attention(tiny_model_dir, monkeypatch):
    """transformers raises ValueError when SDPA is asked of an architecture without it: every
    family's loader then takes the default attention, and the encoder's outputs do not change."""
    from transformers import AutoModel

    expected = BiEncoder.load(tiny_model_dir).encode(TEXTS, "doc")
    real = AutoModel.from_pretrained.__func__
    asked = []

    def without_sdpa(cls, path, *args, **kwargs):
        asked.append(kwargs.get("attn_implementation"))
        if kwargs.get("attn_implementation") == "sdpa":
            raise ValueError("this architecture does not support SDPA")
        return real(cls, path, *args, **kwargs)

    monkeypatch.setattr(AutoModel, "from_pretrained", classmethod(without_sdpa))
    got = BiEncoder.load(tiny_model_dir).encode(TEXTS, "doc")
    assert asked == ["sdpa", None]
    np.testing.assert_allclose(got, expected, atol=1e-6)

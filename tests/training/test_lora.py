"""LoRA through peft for the dual encoder and the cross-encoder: only the adapters train, the base
stays frozen, and the saved folder (merged or adapter) loads in sentence-transformers with rankwise's
outputs; a bad spec is one clear error; an interrupted LoRA run resumes exactly."""

import numpy as np
import pytest
import torch

pytest.importorskip("peft")

import rankwise as rw  # noqa: E402
from rankwise.data.examples import TrainExample  # noqa: E402
from rankwise.errors import ConfigError  # noqa: E402
from rankwise.training.lora import is_adapted, parse_lora  # noqa: E402

TEXTS = ["how to sort a list", "open a file and read it", "the weather is mild"]
EXAMPLES = [TrainExample(f"how to {t}", [(t, f"{t} is done like this")], [(f"n{t}", f"nothing about {t[::-1]}")])
            for t in ("sort", "parse", "open", "read", "join", "split")]  # fmt: skip


def _weights(module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("save", ["merged", "adapter"])
def test_lora_bi_encoder_round_trips_through_sentence_transformers(tiny_model_dir, tmp_path, save):
    st = pytest.importorskip("sentence_transformers")
    model = rw.BiEncoder.load(tiny_model_dir, query_max_length=16, doc_max_length=16)
    before = _weights(model.backbone)
    cfg = rw.TrainConfig(steps=3, batch_size=2, lr=5e-3, lora=f"lora:r=4,alpha=8,save={save}")
    rw.train(model, EXAMPLES, cfg)
    assert is_adapted(model) == (save == "adapter")
    if save == "adapter":  # the base is frozen: only lora_A / lora_B moved
        for name, p in model.backbone.named_parameters():
            assert p.requires_grad == ("lora_" in name), name
        base = model.backbone.get_base_model().state_dict()
        for k, v in base.items():
            if "lora_" not in k and "base_layer" not in k:
                torch.testing.assert_close(v, before[k], msg=k)
    ours = model.encode(TEXTS, "doc")
    assert not np.allclose(ours, rw.BiEncoder.load(tiny_model_dir, doc_max_length=16).encode(TEXTS, "doc"), atol=1e-4)
    path = model.save(tmp_path / "m")
    assert (path / "adapter_config.json").is_file() == (save == "adapter")
    theirs = st.SentenceTransformer(str(path), device="cpu").encode(TEXTS, convert_to_numpy=True)
    np.testing.assert_allclose(theirs, ours, atol=1e-5)
    np.testing.assert_allclose(rw.BiEncoder.load(path).encode(TEXTS, "doc"), ours, atol=1e-5)


@pytest.mark.parametrize("start", ["encoder", "cross-encoder"])
@pytest.mark.parametrize("save", ["merged", "adapter"])
def test_lora_cross_encoder_round_trips_through_sentence_transformers(tiny_model_dir, tmp_path, save, start):
    from sentence_transformers import CrossEncoder as STCrossEncoder

    base = tiny_model_dir if start == "encoder" else rw.CrossEncoder(tiny_model_dir, max_length=32).save(tmp_path / "b")
    model = rw.CrossEncoder(base, max_length=32)
    before = model.predict([("a", "b")])
    cfg = rw.TrainConfig(steps=3, batch_size=2, lr=5e-3, list_size=2, lora=f"lora:r=4,save={save}")
    rw.train(model, EXAMPLES, cfg)
    assert is_adapted(model) == (save == "adapter") and not np.allclose(model.predict([("a", "b")]), before)
    pairs = [("sort a list", "sorted(x) sorts"), ("sort a list", "rain today")]
    ours = model.predict(pairs)
    path = model.save(tmp_path / "ce")
    assert (path / "adapter_config.json").is_file() == (save == "adapter")
    assert (path / "config.json").is_file() == (save == "merged")  # an adapter folder holds no base weights
    theirs = STCrossEncoder(str(path), device="cpu").predict(pairs, convert_to_numpy=True)
    np.testing.assert_allclose(theirs, ours, atol=1e-5)
    np.testing.assert_allclose(rw.CrossEncoder.load(path).predict(pairs), ours, atol=1e-5)


def test_lora_resumes_exactly(tiny_model_dir, tmp_path):
    def run(stop_after=None, resume=False):
        model = rw.BiEncoder.load(tiny_model_dir, query_max_length=16, doc_max_length=16)
        cfg = rw.TrainConfig(steps=4, batch_size=2, lr=5e-3, lora="lora:r=4", checkpoint_every=2)
        from rankwise.training.loop import train

        train(model, EXAMPLES, cfg, tmp_path / "run", resume=resume, stop_after=stop_after)
        return model.encode(TEXTS, "doc")

    import shutil

    straight = run()
    shutil.rmtree(tmp_path / "run")
    run(stop_after=2)
    resumed = run(resume=True)
    np.testing.assert_allclose(resumed, straight, atol=1e-6)


def test_lora_under_gradient_caching_trains_as_without(tmp_path):
    from tests.conftest import make_tiny_bert

    still = make_tiny_bert(tmp_path / "still", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    out = []
    for chunk in (None, 2):
        model = rw.BiEncoder.load(still, query_max_length=16, doc_max_length=16)
        rw.train(model, EXAMPLES, rw.TrainConfig(steps=2, batch_size=4, lr=5e-3, lora="lora:r=4", cache_chunk=chunk))
        out.append(model.encode(TEXTS, "doc"))
    np.testing.assert_allclose(out[1], out[0], atol=1e-5)


def test_bad_lora_spec_is_one_clear_error():
    with pytest.raises(ConfigError, match="unknown parameter 'rank'"):
        parse_lora("lora:rank=8")
    with pytest.raises(ConfigError, match="save=both"):
        parse_lora("lora:save=both")
    with pytest.raises(Exception, match="lora"):
        rw.TrainConfig(lora="ia3")

"""Training on any device: the CUDA checks run where a GPU exists (skipped with the reason elsewhere);
the device choice itself is checked everywhere."""

from __future__ import annotations

import pytest
import torch

from rankwise.data import examples_from_qrels, load_beir
from rankwise.data.examples import TrainExample
from rankwise.device import best_device, resolve_device
from rankwise.errors import ConfigError
from rankwise.models import BiEncoder, CrossEncoder
from rankwise.training import TrainConfig, train
from tests.conftest import make_tiny_bert

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(scope="module")
def no_dropout_model_dir(tmp_path_factory):
    """The tiny BERT without dropout: CPU and CUDA draw dropout masks from different generators."""
    return make_tiny_bert(
        tmp_path_factory.mktemp("tiny-bert-nodrop"), hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
    )


def _cfg(model_dir, **kw) -> TrainConfig:
    base = dict(
        model=str(model_dir),
        batch_size=4,
        steps=6,
        lr=1e-3,
        checkpoint_every=2,
        query_max_length=16,
        doc_max_length=16,
        warmup_ratio=0.0,
    )
    return TrainConfig(**(base | kw))


def test_device_is_chosen_and_checked():
    assert resolve_device(None).type == best_device()
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device is available here"):
            resolve_device("cuda:1")
    with pytest.raises(ConfigError, match="expected cpu, cuda, cuda:N or mps"):
        resolve_device("tpu")


def test_training_on_the_cpu_device_leaves_the_model_there(no_dropout_model_dir, toy_beir, tmp_path, monkeypatch):
    examples = examples_from_qrels(load_beir(toy_beir, "train"))
    cfg = _cfg(no_dropout_model_dir, device="cpu", steps=2)
    model = BiEncoder.load(cfg.model)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    train(model, examples, cfg)
    assert model.device.type == "cpu" and not any(cwd.iterdir())  # no run folder, no checkpoints


@needs_cuda
def test_cuda_steps_equal_cpu_steps(no_dropout_model_dir, toy_beir, tmp_path):
    examples = examples_from_qrels(load_beir(toy_beir, "train"))
    results = {}
    for device in ("cpu", "cuda"):
        cfg = _cfg(no_dropout_model_dir, device=device, negatives_per_query=0)
        model = BiEncoder.load(cfg.model)
        res = train(model, examples, cfg, tmp_path / device)
        assert model.device.type == device
        results[device] = (res, {k: v.detach().cpu() for k, v in model.backbone.state_dict().items()})
    (cpu, w_cpu), (gpu, w_gpu) = results["cpu"], results["cuda"]
    assert [h.loss for h in gpu.history] == pytest.approx([h.loss for h in cpu.history], abs=1e-4)
    assert all(torch.allclose(w_cpu[k], w_gpu[k], atol=1e-4) for k in w_cpu)


@needs_cuda
def test_resume_on_cuda_reaches_the_uninterrupted_weights(tiny_model_dir, toy_beir, tmp_path):
    """With dropout on: the CUDA RNG state travels in the checkpoint."""
    examples = examples_from_qrels(load_beir(toy_beir, "train"))
    cfg = _cfg(tiny_model_dir, device="cuda")
    full = BiEncoder.load(cfg.model)
    res_full = train(full, examples, cfg, tmp_path / "full")
    train(BiEncoder.load(cfg.model), examples, cfg, tmp_path / "part", stop_after=3)
    resumed = BiEncoder.load(cfg.model)
    res = train(resumed, examples, cfg, tmp_path / "part", resume=True)
    assert res.resumed_from == 2
    # CUDA's embedding backward accumulates with atomics (not bitwise deterministic): equal to float noise
    assert [h.loss for h in res.history] == pytest.approx([h.loss for h in res_full.history], abs=1e-5)
    a, b = full.backbone.state_dict(), resumed.backbone.state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


@needs_cuda
def test_bf16_autocast_on_cuda_trains(tiny_model_dir, toy_beir, tmp_path):
    examples = examples_from_qrels(load_beir(toy_beir, "train"))
    cfg = _cfg(tiny_model_dir, device="cuda", bf16=True)
    model = BiEncoder.load(cfg.model)
    res = train(model, examples, cfg)
    assert all(torch.isfinite(torch.tensor(h.loss)) for h in res.history)
    assert next(model.backbone.parameters()).dtype == torch.float32  # weights stay float32


@needs_cuda
def test_cross_encoder_steps_on_cuda_equal_cpu_steps(no_dropout_model_dir, tmp_path):
    """A list batch (mask, diagnostics) on the GPU: the same losses as on the CPU."""
    examples = [
        TrainExample(f"what is topic {i}", [(f"d{i}", f"topic {i} in words")], [(f"d{i + 1}", f"topic {i + 1}")])
        for i in range(8)
    ]
    losses = {}
    for device in ("cpu", "cuda"):
        cfg = TrainConfig(batch_size=4, steps=3, lr=1e-3, list_size=2, diagnostics_every=1, device=device)
        model = CrossEncoder(no_dropout_model_dir, seed=1)
        res = train(model, examples, cfg, tmp_path / device, log=lambda _: None)
        assert model.device.type == device
        losses[device] = [h.loss for h in res.history]
    assert losses["cuda"] == pytest.approx(losses["cpu"], abs=1e-4)

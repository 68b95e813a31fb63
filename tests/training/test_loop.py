import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from rankwise.data import examples_from_qrels, load_beir
from rankwise.errors import ConfigError, RankwiseError
from rankwise.models import BiEncoder
from rankwise.training import TrainConfig, latest_checkpoint, load_config, train
from rankwise.training.samplers import RandomBatches


def _cfg(tiny_model_dir, **kw):
    base = dict(
        model=str(tiny_model_dir),
        batch_size=2,
        steps=6,
        lr=1e-3,
        checkpoint_every=2,
        query_max_length=16,
        doc_max_length=16,
    )
    base.update(kw)
    return TrainConfig(**base)


def _params(model):
    return {k: v.detach().clone() for k, v in model.backbone.state_dict().items()}


def test_resume_after_stop_equals_uninterrupted_run(tiny_model_dir, toy_beir, tmp_path):
    examples = examples_from_qrels(load_beir(toy_beir, "train"))
    cfg = _cfg(tiny_model_dir)
    full = BiEncoder.load(cfg.model)
    res_full = train(full, examples, cfg, tmp_path / "full")
    part = BiEncoder.load(cfg.model)
    train(part, examples, cfg, tmp_path / "part", stop_after=3)  # "killed" after step 3: last checkpoint is step 2
    assert latest_checkpoint(tmp_path / "part").name == "step-0000002.pt"
    resumed = BiEncoder.load(cfg.model)  # a fresh process would start from the base weights
    res = train(resumed, examples, cfg, tmp_path / "part", resume=True)
    assert res.resumed_from == 2
    a, b = _params(full), _params(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [h.loss for h in res.history] == [h.loss for h in res_full.history]
    base = _params(BiEncoder.load(cfg.model))
    assert any(not torch.equal(a[k], base[k]) for k in a)  # training did change the weights
    assert len(list((tmp_path / "full" / "checkpoints").glob("*.pt"))) == cfg.keep_checkpoints


def test_a_resumed_run_counts_the_time_spent_before_the_resume(tiny_model_dir, toy_beir, tmp_path):
    import json

    examples = examples_from_qrels(load_beir(toy_beir, "train"))
    cfg = _cfg(tiny_model_dir)
    part = train(BiEncoder.load(cfg.model), examples, cfg, tmp_path, stop_after=3)
    meta_file = latest_checkpoint(tmp_path).with_suffix(".json")
    meta = json.loads(meta_file.read_text())
    assert 0 < meta["seconds"] <= part.seconds  # steps 1-2 were saved; step 3's time was not
    meta["seconds"] = 1000.0  # stands in for a long first part, so the sum is unmistakable
    meta_file.write_text(json.dumps(meta))
    t0 = time.perf_counter()
    res = train(BiEncoder.load(cfg.model), examples, cfg, tmp_path, resume=True)
    took = time.perf_counter() - t0
    assert 1000.0 < res.seconds < 1000.0 + took
    last = json.loads(latest_checkpoint(tmp_path).with_suffix(".json").read_text())
    assert last["seconds"] == pytest.approx(res.seconds, abs=0.5)  # the final checkpoint carries the total


def test_training_lowers_the_loss(tiny_model_dir, toy_beir, tmp_path):
    examples = examples_from_qrels(load_beir(toy_beir, "train"))
    cfg = _cfg(tiny_model_dir, steps=40, lr=5e-3, batch_size=4, checkpoint_every=100, warmup_ratio=0.0)
    res = train(BiEncoder.load(cfg.model), examples, cfg, tmp_path / "run")
    first, last = sum(h.loss for h in res.history[:5]) / 5, sum(h.loss for h in res.history[-5:]) / 5
    assert last < 0.5 * first


def test_resume_with_other_options_is_refused(tiny_model_dir, toy_beir, tmp_path):
    examples = examples_from_qrels(load_beir(toy_beir, "train"))
    train(BiEncoder.load(str(tiny_model_dir)), examples, _cfg(tiny_model_dir), tmp_path, stop_after=2)
    with pytest.raises(RankwiseError, match=r"other options \(lr: 0.001 in the checkpoint, 0.5 now\)"):
        train(BiEncoder.load(str(tiny_model_dir)), examples, _cfg(tiny_model_dir, lr=0.5), tmp_path, resume=True)


def test_batches_cover_each_epoch_once():
    steps = [set(RandomBatches().bind(10, 3, 0).indices(s, []).tolist()) for s in range(3)]
    assert set().union(*steps) <= set(range(10)) and sum(map(len, steps)) == 9
    assert (
        RandomBatches().bind(10, 3, 0).indices(3, []).tolist() != RandomBatches().bind(10, 3, 0).indices(0, []).tolist()
    )  # epoch 2 reshuffles
    with pytest.raises(RankwiseError, match="larger than"):
        RandomBatches().bind(2, 3, 0)


def test_config_errors_name_the_field(tmp_path):
    with pytest.raises(ConfigError, match="field 'batch_size'"):
        load_config(batch_size=1)
    bad = tmp_path / "c.toml"
    bad.write_text("[train]\nlr = -1\n")
    with pytest.raises(ConfigError, match=r"c.toml: field 'lr'"):
        load_config(bad)
    bad.write_text("[train]\nlearning_rate = 1\n")
    with pytest.raises(ConfigError, match="field 'learning_rate'"):
        load_config(bad)
    with pytest.raises(ConfigError, match="temperature must be > 0"):
        load_config(loss="infonce:temperature=0")
    good = tmp_path / "g.toml"
    good.write_text("[train]\nsteps = 7\n")
    assert load_config(good, steps=None, lr=0.1).model_dump()["steps"] == 7


def _rankwise(*args):
    return [sys.executable, "-m", "rankwise.cli", *map(str, args)]


def test_cli_resume_after_sigkill_matches_uninterrupted(tiny_model_dir, toy_beir, tmp_path):
    from safetensors.torch import load_file

    common = [
        "train",
        "--data",
        toy_beir,
        "--model",
        tiny_model_dir,
        "--batch-size",
        2,
        "--steps",
        100,
        "--checkpoint-every",
        5,
        "--lr",
        1e-3,
        "--query-max-length",
        16,
        "--doc-max-length",
        16,
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        _rankwise(*common, "--out", killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        ckpt = latest_checkpoint(killed)
        if ckpt is not None and int(ckpt.stem.split("-")[1]) >= 10:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    step = int(latest_checkpoint(killed).stem.split("-")[1])
    assert step < 100, "the run finished before it could be killed"
    subprocess.run(_rankwise(*common, "--out", killed, "--resume"), env=env, check=True, capture_output=True)
    subprocess.run(_rankwise(*common, "--out", tmp_path / "clean"), env=env, check=True, capture_output=True)
    a, b = (
        load_file(killed / "model" / "model.safetensors"),
        load_file(tmp_path / "clean" / "model" / "model.safetensors"),
    )
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_optimizer_is_fused_adamw_on_the_cpu_and_updates_as_the_per_tensor_loop(tiny_model_dir):
    """The fused kernel (sentence-transformers' trainer's default) in place of PyTorch's CPU default,
    the per-tensor loop: the same step, group by group (decay, no decay), to float rounding."""
    import copy

    from rankwise.families import family_of
    from rankwise.training.loop import _optimizer

    model = BiEncoder.load(str(tiny_model_dir))
    fused, _ = _optimizer(family_of(model), _cfg(tiny_model_dir, weight_decay=0.1, warmup_ratio=0.0))
    assert fused.defaults["fused"] and len(fused.param_groups) == 2
    names, twin = {id(p): n for n, p in model.named_parameters()}, copy.deepcopy(model)
    twins = dict(twin.named_parameters())
    held = [(p, twins[names[id(p)]]) for g in fused.param_groups for p in g["params"]]
    loop = torch.optim.AdamW(  # the groups' settings, less the kernel choice each group carries
        [
            {**g, "params": [twins[names[id(p)]] for p in g["params"]], "fused": None, "foreach": False}
            for g in fused.param_groups
        ]
    )
    assert not any(g["fused"] or g["foreach"] for g in loop.param_groups)
    start = [p.detach().clone() for p, _ in held]
    torch.manual_seed(0)
    for _ in range(3):
        for p, q in held:
            p.grad = torch.randn_like(p)
            q.grad = p.grad.clone()
        fused.step()
        loop.step()
    assert all(torch.allclose(p, q, atol=1e-6) for p, q in held)
    assert all(not torch.equal(p, s) for (p, _), s in zip(held, start))  # every held tensor moved

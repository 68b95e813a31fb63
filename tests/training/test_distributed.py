"""Data-parallel training: two gloo processes on CPU give the loss and gradients of one process
holding the whole batch, shared positives included; `rankwise train --nproc 2` runs, writes one
run folder, and resumes after a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from rankwise.data.examples import TrainExample
from tests.conftest import REPO, assert_grads_close, make_tiny_bert, make_tiny_causal_lm

LOSSES = ["infonce:temperature=0.05", "mw:global", "lambdaloss"]


def examples() -> list[TrainExample]:
    exs = [
        TrainExample(f"query {i}", [(f"p{i}", f"answer number {i}")], [(f"n{i}", f"unrelated text {i}")])
        for i in range(6)
    ]
    exs[4].positives.append(("p0", "answer number 0"))  # rank 1's query shares rank 0's positive
    return exs


def step(model_dir: str, loss: str, cache_chunk: int | None, shard) -> tuple[float, torch.Tensor, torch.Tensor]:
    from rankwise.families import family_of
    from rankwise.models import BiEncoder
    from rankwise.training import TrainConfig
    from rankwise.training.batching import build_inbatch

    torch.manual_seed(0)
    model = BiEncoder.load(model_dir)
    model.train()
    kind = family_of(model)
    kind.shard = shard
    cfg = TrainConfig(loss=loss, cache_chunk=cache_chunk)
    batch = build_inbatch(examples(), np.random.default_rng(3), n_negatives=1)
    out = kind.forward_backward(batch, lambda s: (cfg.loss(s, batch.labels), {}), cfg, {}, lambda x: None)
    if shard is not None:
        shard.sum_gradients(kind.module)
    grads = torch.cat([p.grad.flatten() for p in kind.module.parameters() if p.grad is not None])
    return float(out[0]), grads, batch.labels


def _worker(rank: int, model_dir: str, init: str, out_dir: str) -> None:
    import torch.distributed as dist

    from rankwise.distributed import Shard

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    shard = Shard(rank, 2)
    for loss in LOSSES:
        for chunk in (None, 3):
            value, grads, _ = step(model_dir, loss, chunk, shard)
            if rank == 0:
                torch.save({"loss": value, "grads": grads}, Path(out_dir) / f"{loss}-{chunk}.pt")
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def still_bert(tmp_path_factory):
    return make_tiny_bert(tmp_path_factory.mktemp("still"), hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def test_two_processes_equal_one_process_holding_the_batch(still_bert, tmp_path):
    _, _, labels = step(str(still_bert), LOSSES[0], None, None)
    assert (labels.sum(0) == 2).any()  # the shared positive: one column, a positive of both queries
    mp.start_processes(
        _worker, args=(str(still_bert), f"file://{tmp_path / 'pg'}", str(tmp_path)), nprocs=2, start_method="spawn"
    )
    for loss in LOSSES:
        want_loss, want_grads, _ = step(str(still_bert), loss, None, None)
        for chunk in (None, 3):
            got = torch.load(tmp_path / f"{loss}-{chunk}.pt")
            assert got["loss"] == pytest.approx(want_loss, abs=1e-5), (loss, chunk)
            assert_grads_close(got["grads"], want_grads, (loss, chunk))


def test_a_batch_smaller_than_the_processes_is_refused(still_bert):
    from rankwise.distributed import Shard
    from rankwise.errors import RankwiseError
    from rankwise.training.grad_cache import Side, cached_forward_backward

    side = Side(lambda items: (torch.zeros(len(items), 2), None), ["only one"])
    with pytest.raises(RankwiseError, match="fewer items than the 2 processes"):
        cached_forward_backward([side], lambda x: x, lambda s: (s.sum(), {}), device_type="cpu", shard=Shard(1, 2))


def test_shards_cover_the_batch_in_order():
    from rankwise.distributed import Shard

    parts = [Shard(r, 3).part(8) for r in range(3)]
    assert [(p.start, p.stop) for p in parts] == [(0, 3), (3, 6), (6, 8)]


@pytest.mark.slow
def test_train_nproc_2_runs_writes_one_folder_and_resumes_after_a_kill(tmp_path):
    out = tmp_path / "run"
    base = [
        sys.executable,
        "-m",
        "rankwise.cli",
        "train",
        "--data",
        "stdlib-code",
        "--out",
        str(out),
        "--steps",
        "4",
        "--batch-size",
        "4",
        "--query-max-length",
        "16",
        "--doc-max-length",
        "32",
        "--checkpoint-every",
        "1",
        "--nproc",
        "2",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        base, cwd=REPO, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.time() + 600
    while not (out / "checkpoints" / "step-0000002.pt").is_file():
        assert proc.poll() is None and time.time() < deadline, proc.stdout.read().decode()[-2000:]
        time.sleep(0.5)
    # every process of the run: torchrun's workers outlive their agent, so kill them by their command line
    subprocess.run(["pkill", "-9", "-f", f"out {out} "], check=False)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(1)
    assert not (out / "model").exists()
    wrong = subprocess.run([*base[:-2], "--resume"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert wrong.returncode != 0 and "made with 2 process(es), this run has 1" in wrong.stdout + wrong.stderr
    done = subprocess.run([*base, "--resume"], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "resuming from" in done.stdout + done.stderr
    assert (out / "model" / "modules.json").is_file() and (out / "config.toml").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # one run folder


def llm_step(lm_dir: str, shard) -> tuple[float, torch.Tensor]:
    """One listwise LLM-reranker step (FIRST's LM term included) on the whole batch or this process's share."""
    from rankwise.families import family_of
    from rankwise.models.llm_reranker import LLMReranker
    from rankwise.training import TrainConfig

    model = LLMReranker.load(lm_dir)
    model.train()
    kind = family_of(model)
    kind.shard = shard
    cfg = TrainConfig(loss="listnet", list_size=2, batch_size=4)
    batch = kind.batch(examples()[:4], np.random.default_rng(3), cfg, 1, None, None)
    out = kind.forward_backward(batch, lambda s: (cfg.loss(s, batch.labels, batch.mask), {}), cfg, {}, lambda x: None)
    if shard is not None:
        shard.sum_gradients(kind.module)
    return float(out[0]), torch.cat([p.grad.flatten() for p in kind.module.parameters() if p.grad is not None])


def _llm_worker(rank: int, lm_dir: str, init: str, out_dir: str) -> None:
    import torch.distributed as dist

    from rankwise.distributed import Shard

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    value, grads = llm_step(lm_dir, Shard(rank, 2))
    if rank == 0:
        torch.save({"loss": value, "grads": grads}, Path(out_dir) / "llm.pt")
    dist.destroy_process_group()


def test_two_processes_train_an_llm_reranker_as_one(tmp_path):
    from rankwise.models.llm_reranker import LLMReranker, LLMRerankerConfig

    lm, tok = make_tiny_causal_lm()
    config = LLMRerankerConfig(window=4, stride=4, doc_tokens=8, lm_weight=0.5)
    lm_dir = str(LLMReranker(lm, tok, config).save(tmp_path / "llm"))
    mp.start_processes(
        _llm_worker, args=(lm_dir, f"file://{tmp_path / 'pg'}", str(tmp_path)), nprocs=2, start_method="spawn"
    )
    want_loss, want_grads = llm_step(lm_dir, None)
    got = torch.load(tmp_path / "llm.pt")
    assert got["loss"] == pytest.approx(want_loss, abs=1e-5)
    assert_grads_close(got["grads"], want_grads, "llm-reranker")

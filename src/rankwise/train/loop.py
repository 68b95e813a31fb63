"""The training loop: plain torch, AdamW, linear warm-up and decay, clipping, checkpoints, resume.

Resuming is exact: the data order and every sampling choice are functions of (seed, step), and
checkpoints hold the model, optimizer, scheduler and torch RNG state (dropout), so a run killed
after checkpoint N and resumed reaches the same weights as one that was never interrupted.
"""

from __future__ import annotations

import logging
import math
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from transformers import get_linear_schedule_with_warmup

from rankwise.data.examples import TrainExample
from rankwise.errors import RankwiseError
from rankwise.io import atomic_path
from rankwise.losses import get as get_loss
from rankwise.models import BiEncoder
from rankwise.train.config import TrainConfig
from rankwise.train.plan import Plan

logger = logging.getLogger(__name__)

CKPT_DIR = "checkpoints"


@dataclass
class StepLog:
    step: int
    loss: float
    lr: float
    examples_per_s: float
    tokens_per_s: float = 0.0  # real (unpadded) tokens encoded per second
    padding: float = 0.0  # share of the encoded positions that were padding
    peak_rss_mb: float = 0.0  # the process's peak resident memory so far
    extra: dict[str, float] = field(default_factory=dict)  # mean false-negative / curriculum weights


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


@dataclass
class TrainResult:
    history: list[StepLog] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)  # {"step": n, "metrics": {...}} from the evaluator
    resumed_from: int = 0
    seconds: float = 0.0


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _set_checkpointing(model: BiEncoder, on: bool) -> None:
    """transformers >= 5 names it activation checkpointing; older versions gradient checkpointing."""
    bb = model.backbone
    if hasattr(bb, "activation_checkpointing_enable"):
        bb.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False}) if on else bb.activation_checkpointing_disable()
    else:
        bb.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False}) if on else bb.gradient_checkpointing_disable()


def bf16_is_native(device: torch.device) -> bool:
    """Whether bf16 matmuls run natively (CPU: AVX512-BF16 or AMX via oneDNN; CUDA: Ampere or newer)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return True


def _checkpoints(out_dir: Path) -> list[Path]:
    root = out_dir / CKPT_DIR
    return sorted(root.glob("step-*.pt")) if root.is_dir() else []


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    found = _checkpoints(Path(out_dir))
    return found[-1] if found else None


def train(
    model: BiEncoder,
    examples: Sequence[TrainExample],
    config: TrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    on_step: Callable[[StepLog], None] | None = None,
    evaluator: Callable[[int], dict[str, float]] | None = None,
    stop_after: int | None = None,
    plan: Plan | None = None,
) -> TrainResult:
    """Train ``model`` in place. ``evaluator(step)`` runs every ``config.eval_every`` steps with the
    model in eval mode; its metrics are kept in ``result.evals`` (and in checkpoints, so they
    survive a resume). ``stop_after`` ends the run early after that step (tests use it to stand
    in for a kill); checkpoints go to ``out_dir/checkpoints``. ``plan`` says how batches and
    negatives are made (default: from ``config`` and the examples alone, no corpus)."""
    out_dir = Path(out_dir)
    seed_everything(config.seed)
    loss_fn = get_loss(config.loss)
    model.config.query_max_length = config.query_max_length
    model.config.doc_max_length = config.doc_max_length
    plan = plan or Plan(config, list(examples), out_dir=out_dir)
    plan.prepare(model)
    if config.bf16 and not bf16_is_native(model.device):
        logger.warning("bf16 autocast on %s without native bf16 support: expect it slower than float32", model.device)
    if config.activation_checkpointing:
        _set_checkpointing(model, True)
    token_cache: dict = {}  # every text is tokenised once per run
    params = list(model.backbone.named_parameters())
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
    groups = [
        {"params": [p for n, p in params if not n.endswith(no_decay)], "weight_decay": config.weight_decay},
        {"params": [p for n, p in params if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=config.lr)
    # transformers' schedule, as sentence-transformers' trainer uses it: ceil(ratio x steps) warm-up
    # steps from lr 0, then linear decay to 0 (same learning rates step for step)
    scheduler = get_linear_schedule_with_warmup(optimizer, math.ceil(config.warmup_ratio * config.steps), config.steps)
    result = TrainResult()
    start = 0
    if resume:
        ckpt = latest_checkpoint(out_dir)
        if ckpt is not None:
            state = torch.load(ckpt, map_location="cpu", weights_only=False)
            if state["config"] != config.model_dump():
                raise RankwiseError(f"{ckpt}: the checkpoint was made with another configuration; use a new --out or the same options")
            model.backbone.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["torch_rng"])
            result.history = [StepLog(**h) for h in state["history"]]
            result.evals = state.get("evals", [])
            if state.get("plan"):
                plan.load_state_dict(state["plan"])
            start = result.resumed_from = state["step"]
    model.train()
    t0 = time.perf_counter()
    for step in range(start, config.steps):
        plan.before_step(step, model)
        t_step = time.perf_counter()
        exs, batch = plan.batch(step)
        with torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=config.bf16):
            q = model.embed(batch.queries, "query", token_cache=token_cache, chunk_tokens=config.chunk_tokens)
            q_tokens = model.last_tokens
            d = model.embed(batch.docs, "doc", token_cache=token_cache, chunk_tokens=config.chunk_tokens)
            d_tokens = model.last_tokens
        scores = q.float() @ d.float().T  # the loss always sees float32 scores
        loss = plan.loss(loss_fn, scores, batch, exs, step)
        if not torch.isfinite(loss):
            raise RankwiseError(f"step {step + 1}: the loss is {loss.item()}; lower the learning rate or check the data")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.backbone.parameters(), config.max_grad_norm)
        lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        took = time.perf_counter() - t_step
        real, padded = q_tokens[0] + d_tokens[0], q_tokens[1] + d_tokens[1]
        log = StepLog(step + 1, float(loss.detach()), lr, len(exs) / took, real / took, 1 - real / max(1, padded), peak_rss_mb(),
                      dict(plan.last_info))
        result.history.append(log)
        if on_step:
            on_step(log)
        done = step + 1
        if evaluator is not None and config.eval_every and done % config.eval_every == 0:
            model.eval()
            result.evals.append({"step": done, "metrics": evaluator(done)})
            model.train()
        if done % config.checkpoint_every == 0 or done == config.steps:
            save_checkpoint(out_dir, done, model, optimizer, scheduler, config, result, plan)
        if stop_after is not None and done >= stop_after:
            break
    model.eval()
    if config.activation_checkpointing:
        _set_checkpointing(model, False)
    result.seconds = time.perf_counter() - t0
    return result


def save_checkpoint(out_dir: Path, step: int, model: BiEncoder, optimizer, scheduler, config: TrainConfig, result: TrainResult,
                    plan: Plan | None = None) -> Path:
    path = out_dir / CKPT_DIR / f"step-{step:07d}.pt"
    state = {
        "step": step,
        "model": model.backbone.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "config": config.model_dump(),
        "history": [h.__dict__ for h in result.history],
        "evals": result.evals,
        "plan": plan.state_dict() if plan is not None else None,
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    for old in _checkpoints(out_dir)[: -config.keep_checkpoints]:
        old.unlink(missing_ok=True)
    return path


def remove_checkpoints(out_dir: str | Path) -> None:
    shutil.rmtree(Path(out_dir) / CKPT_DIR, ignore_errors=True)

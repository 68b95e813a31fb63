"""The training loop: plain torch, AdamW, linear warm-up and decay, clipping, checkpoints, resume.

Resuming is exact: the data order and every sampling choice are functions of (seed, step), and
checkpoints hold the model, optimizer, scheduler and torch RNG state (dropout; CUDA's too), so a
run killed after checkpoint N and resumed reaches the same weights as one that was never
interrupted. A checkpoint is two files: ``step-N.pt`` holds tensors only and is read with
``torch.load(weights_only=True)``; ``step-N.json`` holds the rest. Loading someone else's run
folder never executes code from it.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import math
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import get_linear_schedule_with_warmup

from rankwise.data.beir import Dataset
from rankwise.data.examples import TrainExample, examples_from_qrels
from rankwise.device import resolve_device
from rankwise.distributed import current, init_from_env, is_main
from rankwise.errors import ConfigError, RankwiseError
from rankwise.families import Family, family_of
from rankwise.io import atomic_path, write_json
from rankwise.models import BiEncoder, CrossEncoder
from rankwise.rng import rng_state, set_rng_state
from rankwise.training.config import NOT_TRAINING, TrainConfig
from rankwise.training.plan import Plan

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
    # wall time of the training loop over all its steps: a resumed run adds the time saved with
    # its checkpoint, so a run cut off and resumed reports what the whole run cost
    seconds: float = 0.0
    stopped_at: int | None = None  # the step early stopping ended the run at (patience)


def improved_within(evals: list[dict], metric: str | None, patience: int) -> bool:
    """Whether the best ``metric`` so far was reached in the last ``patience`` evaluations (True
    while fewer than ``patience + 1`` evaluations exist)."""
    values = [e["metrics"][metric] for e in evals if metric in e["metrics"]]
    if len(values) <= patience:
        return True
    return max(values[-patience:]) > max(values[:-patience])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _set_checkpointing(bb: torch.nn.Module, on: bool) -> None:
    """transformers >= 5 names it activation checkpointing; older versions gradient checkpointing."""
    if hasattr(bb, "activation_checkpointing_enable"):
        bb.activation_checkpointing_enable(
            activation_checkpointing_kwargs={"use_reentrant": False}
        ) if on else bb.activation_checkpointing_disable()
    else:
        bb.gradient_checkpointing_enable(
            gradient_checkpointing_kwargs={"use_reentrant": False}
        ) if on else bb.gradient_checkpointing_disable()


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
    return sorted(p for p in root.glob("step-*.pt") if p.with_suffix(".json").is_file()) if root.is_dir() else []


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    found = _checkpoints(Path(out_dir))
    return found[-1] if found else None


def _split_arrays(obj: Any, tensors: dict[str, torch.Tensor], path: str = "plan") -> Any:
    """JSON-able ``obj`` with its arrays moved into ``tensors`` (weights_only checkpoints hold no numpy)."""
    if isinstance(obj, np.ndarray):
        tensors[path] = torch.from_numpy(np.ascontiguousarray(obj))
        return {"__array__": path}
    if isinstance(obj, torch.Tensor):
        tensors[path] = obj.detach().cpu()
        return {"__tensor__": path}
    if isinstance(obj, dict):
        return {k: _split_arrays(v, tensors, f"{path}.{k}") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_split_arrays(v, tensors, f"{path}.{i}") for i, v in enumerate(obj)]
    return obj


def _join_arrays(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__array__"}:
            return tensors[obj["__array__"]].numpy()
        if set(obj) == {"__tensor__"}:
            return tensors[obj["__tensor__"]]
        return {k: _join_arrays(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join_arrays(v, tensors) for v in obj]
    return obj


def check_resume(out_dir: str | Path, config: TrainConfig, *, world: int | None = None) -> Path | None:
    """The checkpoint a resumed run in ``out_dir`` starts from (None: none, it starts at step 0),
    after checking it was made with the same options (and, given ``world``, as many processes);
    stale temporary files of a write that was killed are removed. Raises naming each differing
    option with both values."""
    root = Path(out_dir) / CKPT_DIR
    if root.is_dir() and is_main():
        for stale in root.glob(".step-*"):  # atomic_path's temporaries of an interrupted write
            stale.unlink(missing_ok=True)
    ckpt = latest_checkpoint(out_dir)
    if ckpt is not None:
        meta = json.loads(ckpt.with_suffix(".json").read_text(encoding="utf-8"))
        saved = meta["config"]
        if world is not None and meta.get("world", 1) != world:
            raise RankwiseError(
                f"{ckpt}: the checkpoint was made with {meta.get('world', 1)} process(es), this run has {world}; "
                f"resume with --nproc {meta.get('world', 1)} (the global batch and its order depend on it)"
            )
        now = _config_state(config)
        if saved.get("steps") == meta.get("step") and now["steps"] > meta.get("step", 0):
            now["steps"] = saved["steps"]  # a finished run's final checkpoint, extended by more steps
        diff = _differences(saved, now)
        if diff:
            raise RankwiseError(
                f"{ckpt}: the checkpoint was made with other options ({'; '.join(diff)}); "
                "use a new run folder or the same options"
            )
    return ckpt


def _config_state(config: TrainConfig) -> dict[str, Any]:
    return json.loads(json.dumps(config.model_dump()))


def _differences(saved: dict[str, Any], now: dict[str, Any]) -> list[str]:
    return [
        f"{k}: {saved.get(k)!r} in the checkpoint, {now.get(k)!r} now"
        for k in sorted(set(saved) | set(now))
        if saved.get(k) != now.get(k) and k not in NOT_TRAINING
    ]


def _as_examples(
    data: Dataset | Sequence[TrainExample], corpus: Dataset | None
) -> tuple[list[TrainExample], Dataset | None]:
    if isinstance(data, Dataset):
        examples = examples_from_qrels(data)
        if not examples:
            raise RankwiseError(f"dataset {data.path or ''} ({data.split}): no query has a judged positive to train on")
        return examples, corpus if corpus is not None else data
    # strategies give examples their negatives (and scores) for this run: work on shallow copies,
    # so the caller's examples keep theirs (e.g. mined ones reused with another strategy)
    examples = [copy.copy(ex) for ex in data]
    if not examples:
        raise RankwiseError("no training examples")
    return examples, corpus


def train(
    model: BiEncoder | CrossEncoder | Family,
    data: Dataset | Sequence[TrainExample],
    config: TrainConfig | None = None,
    out_dir: str | Path | None = None,
    *,
    corpus: Dataset | None = None,
    resume: bool = False,
    on_step: Callable[[StepLog], None] | None = None,
    evaluator: Callable[[int], dict[str, float]] | None = None,
    stop_after: int | None = None,
    plan: Plan | None = None,
    show_progress: bool = False,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Train ``model`` (a model of any registered family: a :class:`~rankwise.models.BiEncoder`, a
    :class:`~rankwise.models.CrossEncoder`, ..., or a :class:`~rankwise.families.Family`) in place
    and return its history.

    ``data``: a :class:`~rankwise.data.Dataset` split (one example per judged query; it is also
    the corpus that negatives strategies mine) or training examples, with ``corpus`` the
    dataset they come from when a strategy mines. ``out_dir``: where checkpoints go (every
    ``config.checkpoint_every`` steps; none without it) and what ``resume`` continues from.
    ``evaluator(step)`` runs every ``config.eval_every`` steps with the model in eval mode; its
    metrics are kept in ``result.evals``. ``stop_after`` ends the run early after that step
    (tests use it to stand in for a kill). ``plan`` overrides how batches and negatives are made.
    The model's own max lengths are kept; the config's, when given, apply during training only.
    """
    config = config or TrainConfig()
    family = family_of(model)
    if config.kind is not None and config.kind != family.name:
        raise ConfigError(f"the config trains a {config.kind}, and the model given is a {family.name}")
    examples, corpus = _as_examples(data, corpus)
    out = Path(out_dir) if out_dir is not None else None
    if resume and out is None:
        raise ConfigError("resume needs the run folder (out_dir) that holds the checkpoints")
    device = resolve_device(config.device)
    family.shard = init_from_env(device)
    if family.shard is not None:
        if not family.data_parallel:
            raise ConfigError(f"a {family.name} trains in one process; run it without torchrun / --nproc")
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        if family.shard.rank != 0:  # rank 0 alone logs, reports and writes checkpoints
            log, on_step, show_progress = (lambda _: None), None, False
    seed_everything(config.seed)
    with ExitStack() as stack:
        work = out if out is not None else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rankwise-")))
        stack.enter_context(family.training_lengths(config))
        lora = None
        if config.lora:
            from rankwise.training.lora import apply_lora, finish_lora, parse_lora

            lora = parse_lora(config.lora)
            apply_lora(family.model, lora)  # before the device move, the optimizer and any checkpoint load
        family.model.to(device)
        plan = plan or Plan(config, examples, dataset=corpus, work_dir=work, show_progress=show_progress, log=log)
        result = _run(family, config, plan, out, device, resume, on_step, evaluator, stop_after, log)
        if lora is not None:
            finish_lora(family.model, lora)
        return result


def _optimizer(family: Family, config: TrainConfig):
    """AdamW without decay on biases and norms, a head at its own learning rate, and
    transformers' schedule as sentence-transformers' trainer uses it: ceil(ratio x steps) warm-up
    steps from lr 0, then linear decay to 0 (same learning rates step for step)."""
    params = [(n, p) for n, p in family.module.named_parameters() if p.requires_grad]  # LoRA freezes the base
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
    scale = {n: (config.head_lr_scale if k < 0 else k) for names, k in family.param_groups() for n in names}
    groups = [
        {
            "params": [p for n, p in params if n.endswith(no_decay) == nd and scale.get(n, 1.0) == lr_scale],
            "weight_decay": 0.0 if nd else config.weight_decay,
            "lr": config.lr * lr_scale,
        }
        for lr_scale in sorted({1.0, *scale.values()})
        for nd in (False, True)
    ]
    # the fused kernel (as sentence-transformers' trainer uses by default): one pass over all the
    # tensors, about 10x faster than the per-tensor loop on the CPU; same update up to rounding
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for _, p in params)
    optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=config.lr, fused=fused or None)
    scheduler = get_linear_schedule_with_warmup(optimizer, math.ceil(config.warmup_ratio * config.steps), config.steps)
    return optimizer, scheduler


def _run(
    family: Family,
    config: TrainConfig,
    plan: Plan,
    out: Path | None,
    device: torch.device,
    resume: bool,
    on_step,
    evaluator,
    stop_after,
    log,
) -> TrainResult:
    model = family.model
    plan.prepare(family)
    _check(family, config, device)
    family.prepare_training(plan.source.examples, config)  # may change the module (e.g. untie the towers)
    module = family.module
    if config.activation_checkpointing:
        _set_checkpointing(module, True)
    token_cache: dict = {}  # every text is tokenised once per run
    optimizer, scheduler = _optimizer(family, config)
    result = TrainResult()
    start = 0
    if resume:
        ckpt = check_resume(out, config, world=family.shard.world if family.shard else 1)
        if ckpt is None:
            log(f"no checkpoint in {out / CKPT_DIR}: starting from step 0")
        else:
            start = result.resumed_from = _load_checkpoint(
                ckpt, module, optimizer, scheduler, config, result, plan, device
            )
            log(f"resuming from {ckpt} (step {start})")
    model.train()
    t0 = time.perf_counter() - result.seconds  # result.seconds: the time before a resume (or 0)
    for step in range(start, config.steps):
        entry = _step(family, plan, config, step, optimizer, scheduler, token_cache)
        result.history.append(entry)
        if on_step:
            on_step(entry)
        done = step + 1
        if evaluator is not None and config.eval_every and done % config.eval_every == 0 and is_main():
            model.eval()
            result.evals.append({"step": done, "metrics": evaluator(done)})
            model.train()
        stopping = config.patience and not improved_within(result.evals, config.best_metric, config.patience)
        if out is not None and (done % config.checkpoint_every == 0 or done == config.steps or stopping) and is_main():
            result.seconds = time.perf_counter() - t0
            save_checkpoint(out, done, module, optimizer, scheduler, config, result, plan)
        if stopping:
            log(f"early stop at step {done}: no better {config.best_metric} in {config.patience} evaluations")
            result.stopped_at = done
            break
        if stop_after is not None and done >= stop_after:
            break
    model.eval()
    if config.activation_checkpointing:
        _set_checkpointing(module, False)
    result.seconds = time.perf_counter() - t0
    return result


def _check(family: Family, config: TrainConfig, device: torch.device) -> None:
    """Options the family or the run cannot honour: an error; bf16 without native support: a warning."""
    if (config.embedding_terms or config.principal_axes) and not family.embedding_terms:
        raise ConfigError(
            f"embedding_terms and principal_axes apply to a family with embeddings scored by dot product, not a {family.name}"
        )
    if config.patience and family.shard is not None:  # only rank 0 evaluates: the others could not stop with it
        raise ConfigError("patience (early stopping) runs in one process, not data-parallel")
    if config.bf16 and not bf16_is_native(device):
        logger.warning("bf16 autocast on %s without native bf16 support: expect it slower than float32", device)


def _step(family: Family, plan: Plan, config: TrainConfig, step: int, optimizer, scheduler, token_cache) -> StepLog:
    """One optimizer step: the source's batch, the family's scores, the objective's loss, backward, update."""
    plan.before_step(step)
    t_step = time.perf_counter()
    current = plan.source.step(step)
    family.begin_step(step, config)
    loss, info, tokens = family.forward_backward(
        current.batch,
        lambda scores: plan.objective(scores, current),
        config,
        token_cache,
        functools.partial(_refuse_non_finite, step=step),
    )
    module = family.module
    if family.shard is not None:
        family.shard.sum_gradients(module)
    torch.nn.utils.clip_grad_norm_(module.parameters(), config.max_grad_norm)
    lr = optimizer.param_groups[0]["lr"]
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    took = time.perf_counter() - t_step
    real, padded = tokens
    n = len(current.examples)
    return StepLog(
        step + 1, float(loss.detach()), lr, n / took, real / took, 1 - real / max(1, padded), peak_rss_mb(), info
    )


def _refuse_non_finite(loss: torch.Tensor, step: int) -> None:
    if not torch.isfinite(loss):
        raise RankwiseError(f"step {step + 1}: the loss is {loss.item()}; lower the learning rate or check the data")


def save_checkpoint(
    out_dir: Path,
    step: int,
    module: torch.nn.Module,
    optimizer,
    scheduler,
    config: TrainConfig,
    result: TrainResult,
    plan: Plan | None = None,
) -> Path:
    """``step-N.json`` (config, history, plan state) then ``step-N.pt`` (tensors), each atomically;
    a checkpoint counts once its ``.pt`` exists."""
    path = out_dir / CKPT_DIR / f"step-{step:07d}.pt"
    plan_tensors: dict[str, torch.Tensor] = {}
    shard = current()
    meta = {
        "step": step,
        "world": shard.world if shard else 1,
        "config": _config_state(config),
        "history": [h.__dict__ for h in result.history],
        "evals": result.evals,
        "seconds": result.seconds,
        "plan": _split_arrays(plan.state_dict(), plan_tensors) if plan is not None else None,
    }
    write_json(path.with_suffix(".json"), meta)
    tensors = {
        "model": module.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": rng_state(),
        "plan": plan_tensors,
    }
    with atomic_path(path) as tmp:
        torch.save(tensors, tmp)
    for old in _checkpoints(out_dir)[: -config.keep_checkpoints]:
        old.unlink(missing_ok=True)
        old.with_suffix(".json").unlink(missing_ok=True)
    return path


def _load_checkpoint(
    ckpt: Path,
    module: torch.nn.Module,
    optimizer,
    scheduler,
    config: TrainConfig,
    result: TrainResult,
    plan: Plan,
    device: torch.device,
) -> int:
    meta = json.loads(ckpt.with_suffix(".json").read_text(encoding="utf-8"))
    try:
        tensors = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: torch raises many kinds
        raise RankwiseError(
            f"{ckpt}: cannot read the checkpoint ({type(exc).__name__}: {exc})".splitlines()[0]
        ) from None
    module.load_state_dict(tensors["model"])
    module.to(device)
    optimizer.load_state_dict(tensors["optimizer"])
    scheduler.load_state_dict(tensors["scheduler"])
    saved = tensors["rng"]  # a CUDA run's state resumes on a CPU-only machine without its CUDA part
    set_rng_state({"torch": saved["torch"], "cuda": saved.get("cuda") if torch.cuda.is_available() else None})
    result.history = [StepLog(**h) for h in meta["history"]]
    result.evals = meta.get("evals", [])
    result.seconds = float(meta.get("seconds", 0.0))  # checkpoints from before 2026-12-04 lack it
    if meta.get("plan"):
        plan.load_state_dict(_join_arrays(meta["plan"], tensors["plan"]))
    return int(meta["step"])


def remove_checkpoints(out_dir: str | Path) -> None:
    shutil.rmtree(Path(out_dir) / CKPT_DIR, ignore_errors=True)

"""``rankwise train``: fine-tune a model of any family in a run folder, with evaluation before and
after, progress, TensorBoard/MLflow logging, a report; under torchrun every process runs it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rankwise.data import examples_from_qrels, load_beir, load_examples
from rankwise.data.beir import Dataset
from rankwise.errors import ConfigError
from rankwise.io import write_json
from rankwise.jobs.folder import CONFIG, RunFolder, portable
from rankwise.metrics import DEFAULT_METRICS
from rankwise.metrics.model import EvalResult, evaluate_model
from rankwise.progress import console, task
from rankwise.report import training_loss, write_report
from rankwise.report.run_report import EVAL_HISTORY, build_report
from rankwise.training import TrainConfig, train
from rankwise.training.config import NOT_TRAINING
from rankwise.training.loop import check_resume, latest_checkpoint, remove_checkpoints
from rankwise.training.tracking import Tracker


@dataclass
class TrainJob:
    steps: int
    examples: int
    seconds: float
    folder: Path
    before: dict[str, float] | None = None  # on the eval split, when one was given
    after: dict[str, float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def new_model(cfg: TrainConfig):
    """The model to fine-tune, with its own token limits (the config's apply while training only)."""
    from rankwise.families import family_named

    return family_named(cfg.kind or "bi-encoder").fresh(cfg)


def _tracker_step(tracker: Tracker, advance):
    def on_step(s) -> None:
        advance(
            1,
            info=f"loss {s.loss:.4f}  lr {s.lr:.2e}  {s.examples_per_s:.1f} ex/s  {s.tokens_per_s:.0f} tok/s  "
            f"pad {100 * s.padding:.0f}%  peak {s.peak_rss_mb / 1024:.1f} GB",
        )
        scalars = {
            "loss": s.loss,
            "lr": s.lr,
            "examples_per_s": s.examples_per_s,
            "tokens_per_s": s.tokens_per_s,
            "padding": s.padding,
            "peak_rss_mb": s.peak_rss_mb,
        }
        tracker.log(s.step, {f"train/{k}": v for k, v in (scalars | s.extra).items()})

    return on_step


def train_with_progress(model, examples, cfg: TrainConfig, out: Path, resume: bool, show_progress: bool, **kw):
    """Train with a progress bar, TensorBoard/MLflow logging and, with ``cfg.eval_every``,
    evaluation on ``eval_ds`` during training (``before``: the metrics at step 0)."""
    eval_ds: Dataset | None = kw.get("eval_ds")
    before: dict[str, float] | None = kw.get("before")
    tracker = Tracker(out, run_name=out.name, params=cfg.to_toml_dict())
    if before:
        tracker.log(0, {f"eval/{k}": v for k, v in before.items()})

    check_ds: Dataset | None = kw.get("check_ds")

    def evaluator(step: int) -> dict[str, float]:
        res = evaluate_model(model, eval_ds)
        if cfg.best_metric is not None and step < cfg.steps:  # a candidate for the best step (the last is kept anyway)
            keep_candidate(model, out, step, res.per_query[cfg.best_metric])
        metrics = res.metrics | check_metrics(model, check_ds)
        tracker.log(step, {f"eval/{k}": v for k, v in metrics.items()})
        return metrics

    try:
        with task("train", cfg.steps, enabled=show_progress) as advance:
            ckpt = latest_checkpoint(out) if resume else None
            if ckpt is not None:
                advance(int(ckpt.stem.split("-")[1]))
            return train(
                model,
                examples,
                cfg,
                out,
                corpus=kw.get("train_ds"),
                resume=resume,
                on_step=_tracker_step(tracker, advance),
                evaluator=evaluator if eval_ds is not None and cfg.eval_every else None,
                show_progress=show_progress,
                log=console.print,
            )
    finally:
        tracker.close()


CANDIDATES = "candidates"  # evaluated steps' models while best_metric chooses among them


def keep_candidate(model, out: Path, step: int, per_query: dict[str, float]) -> None:
    """The model at an evaluated step and its per-query values, for :func:`keep_best`."""
    from rankwise.families import family_of

    folder = out / CANDIDATES / f"step-{step:06d}"
    family_of(model).save(folder / "model")
    write_json(folder / "per_query.json", per_query)


def keep_best(folder: RunFolder, model, cfg: TrainConfig, final_step: int, final: EvalResult, eval_ds):
    """Choose among the candidates and the final model (:func:`rankwise.training.best.choose_step`);
    returns the model to keep, its evaluation, and what was chosen."""
    import shutil

    import numpy as np

    from rankwise.families import family_of
    from rankwise.training.best import choose_step

    metric, qids = cfg.best_metric, sorted(eval_ds.qrels)
    kept = {final_step: (model, final.per_query[metric])}
    for cand in sorted((folder / CANDIDATES).glob("step-*")) if (folder / CANDIDATES).is_dir() else []:
        step = int(cand.name.split("-")[1])
        if step < final_step:
            kept[step] = (cand / "model", json.loads((cand / "per_query.json").read_text()))
    chosen = choose_step({s: np.array([pq[q] for q in qids]) for s, (_, pq) in kept.items()}, cfg.best_alpha)
    if chosen.step != final_step:
        model = type(family_of(model)).load(kept[chosen.step][0], device=str(family_of(model).module.device))
        final = evaluate_model(model, eval_ds)
    shutil.rmtree(folder / CANDIDATES, ignore_errors=True)
    info = {"metric": metric, "step": chosen.step, "best_step": chosen.best, "mean": chosen.mean}
    return model, final, info | {"best_mean": chosen.best_mean, "p_vs_best": chosen.p, "steps_evaluated": sorted(kept)}


def check_metrics(model, check_ds: Dataset | None) -> dict[str, float]:
    """The out-of-domain check set's metrics, keyed ``check/...`` (empty without one): scored beside
    the eval split so that a recipe which forgets what the model knew elsewhere shows it."""
    if check_ds is None:
        return {}
    return {f"check/{k}": v for k, v in evaluate_model(model, check_ds, cache=True).metrics.items()}


def finish_training(model, result, folder: RunFolder) -> None:
    """The model, its history and loss curve: written before anything else can fail."""
    folder.save_model(model)
    write_json(folder / "history.json", [h.__dict__ for h in result.history])
    training_loss([h.step for h in result.history], [h.loss for h in result.history], folder / "loss.png")


def check_resumable(folder: RunFolder, cfg: TrainConfig, world: int) -> None:
    """A resume continues an unfinished run with the same training options: the options are
    checked against ``config.toml`` (and the checkpoint); a finished run is refused, unless it
    kept its final checkpoint and ``cfg.steps`` extends it."""
    from rankwise.training.config import load_config

    ckpt = check_resume(folder.path, cfg, world=world)  # names the checkpoint's differing options
    if (folder / CONFIG).is_file():
        saved = load_config(folder / CONFIG).model_dump()
        now = cfg.model_dump()
        diff = [
            k for k in sorted(set(saved) | set(now)) if k not in NOT_TRAINING | {"steps"} and saved.get(k) != now.get(k)
        ]
        if diff:
            shown = "; ".join(f"{k}: {saved.get(k)!r} in {folder / CONFIG}, {now.get(k)!r} now" for k in diff)
            raise ConfigError(f"resume: the run was made with other options ({shown}); use a new run folder")
    done = int(ckpt.stem.split("-")[1]) if ckpt is not None else None
    if folder.model_dir.exists() and (done is None or done >= cfg.steps):
        raise ConfigError(
            f"resume: {folder.path} holds a finished run ({folder.model_dir}); nothing to resume "
            + ("(more steps extend it)" if done is not None else "(keep_final_checkpoint=True keeps a run extendable)")
        )


def _train_worker(data, out, cfg: TrainConfig, split, train_file, resume, allow_missing) -> TrainJob:
    """A torch.distributed process other than rank 0: waits for rank 0 to set up the run folder,
    trains its share of every batch, writes nothing."""
    import torch.distributed as dist

    status: list[str | None] = [None]
    dist.broadcast_object_list(status, src=0)
    if status[0] is not None:  # rank 0 refused the run and says why
        raise SystemExit(1)
    dataset, examples = _examples(data, split, train_file, allow_missing)
    corpus = dataset.own_split() if dataset is not None else None
    result = train(new_model(cfg), examples, cfg, Path(out), corpus=corpus, resume=resume, log=lambda _: None)
    return TrainJob(cfg.steps, len(examples), result.seconds, Path(out))


class _WorkerGate:
    """Rank 0 tells the other processes once whether the run folder is ready, or that the run failed."""

    def __init__(self, shard) -> None:
        self.shard, self.done = shard, False

    def _say(self, error: str | None) -> None:
        if self.shard is not None and not self.done:
            import torch.distributed as dist

            dist.broadcast_object_list([error], src=0)
            self.done = True

    def release(self) -> None:
        self._say(None)

    def fail(self, exc: BaseException) -> None:
        self._say(str(exc) or type(exc).__name__)


def train_run(
    data: str | Path | None,
    out: str | Path,
    cfg: TrainConfig,
    *,
    split: str = "train",
    train_file: str | Path | None = None,
    eval_split: str | None = None,
    check_data: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    allow_missing: bool = False,
    show_progress: bool = True,
) -> TrainJob:
    """Train in a run folder; ``check_data``: a BEIR folder (e.g. trec-dl-5k) whose test split is
    scored beside the eval split, before, during and after training. Under torchrun (or ``rankwise train --nproc N``) every process runs
    this; rank 0 writes the folder, logs and reports, the others train their share."""
    from rankwise.device import resolve_device
    from rankwise.distributed import init_from_env

    for file in _train_files(train_file):
        if not file.is_file():
            raise ConfigError(f"train_file={file}: no such file", param="train_file")
    if len(_train_files(train_file)) > 1 and str(cfg.batching).split(":")[0] not in ("mix", "random"):
        raise ConfigError(
            "several training files go with --batching mix (each batch from one file) or random (batches across files)"
        )
    shard = init_from_env(resolve_device(cfg.device))
    if shard is not None and shard.rank != 0:
        return _train_worker(data, out, cfg, split, train_file, resume, allow_missing)
    gate = _WorkerGate(shard)
    try:
        with RunFolder.open(out, resume=resume, overwrite=overwrite) as folder:
            run = {"data": data, "split": split, "train_file": train_file, "eval_split": eval_split}
            run["check_data"] = check_data
            return _train_in(folder, cfg, run, resume, allow_missing, show_progress, gate)
    except BaseException as exc:
        gate.fail(exc)
        raise


def _train_files(train_file) -> list[Path]:
    """``a.jsonl,b.jsonl``: several training sets, mixed (each example tagged with its file's stem)."""
    return [Path(f) for f in str(train_file).split(",") if f] if train_file is not None else []


def _examples(data, split: str, train_file, allow_missing: bool):
    """The training dataset (None for a text-form file without --data) and its examples."""
    from rankwise.data.examples import mix_sources

    dataset = load_beir(data, split, allow_missing=allow_missing) if data is not None else None
    files = _train_files(train_file)
    if len(files) > 1:
        return dataset, mix_sources({f.stem: load_examples(f, dataset) for f in files})
    return dataset, load_examples(train_file, dataset) if train_file else examples_from_qrels(dataset)


def _prepare(folder: RunFolder, cfg, run, resume, allow_missing, gate):
    data = run["data"]
    dataset, examples = _examples(data, run["split"], run["train_file"], allow_missing)
    if run["eval_split"] and data is None:
        raise ConfigError("eval_split= evaluates on a dataset: give data= too")
    eval_ds = load_beir(data, run["eval_split"], allow_missing=allow_missing).own_split() if run["eval_split"] else None
    check = run.get("check_data")
    if check is not None and eval_ds is None:
        raise ConfigError(
            "the check set (check_data=) is scored beside the eval split: give eval_split= too", param="check_data"
        )
    check_ds = load_beir(check, "test").own_split() if check is not None else None
    if resume:  # refuse other options (or another number of processes) before anything is written
        check_resumable(folder, cfg, gate.shard.world if gate.shard else 1)
    stored = {
        "command": "train",
        "data": portable(data),
        "split": run["split"],
        "train_file": ",".join(str(portable(f)) for f in _train_files(run["train_file"])) or None,
    }
    folder.write_config(stored | {"eval_split": run["eval_split"], "check_data": portable(check)}, cfg)
    return dataset, examples, eval_ds, check_ds


def _train_in(folder: RunFolder, cfg, run, resume, allow_missing, show_progress, gate) -> TrainJob:
    dataset, examples, eval_ds, check_ds = _prepare(folder, cfg, run, resume, allow_missing, gate)
    model = new_model(cfg)
    before = None
    if eval_ds is not None:
        before = evaluate_model(model, eval_ds, show_progress=show_progress, cache=True)
        before.metrics |= check_metrics(model, check_ds)
        folder.write_run("run-before.trec", before.run, tag="before")
    gate.release()  # the folder is ready: the other processes start training
    result = train_with_progress(
        model, examples, cfg, folder.path, resume, show_progress,
        eval_ds=eval_ds, check_ds=check_ds, before=before.metrics if before else None,
        train_ds=dataset.own_split() if dataset is not None else None,
    )  # fmt: skip
    finish_training(model, result, folder)
    job = TrainJob(cfg.steps, len(examples), round(result.seconds, 1), folder.path)
    text = f"{len(examples)} training examples, {cfg.steps} steps of batch {cfg.batch_size} with {cfg.loss}, {result.seconds:.0f} s."
    source = Path(run["data"] or run["train_file"]).name
    summary: dict[str, Any] = {"steps": cfg.steps, "examples": len(examples), "seconds": job.seconds}
    if eval_ds is not None and before is not None:
        after = last = evaluate_model(model, eval_ds, show_progress=show_progress)
        last.metrics |= check_metrics(model, check_ds)
        if cfg.best_metric is not None:
            model, after, summary["best"] = keep_best(
                folder, model, cfg, result.stopped_at or cfg.steps, after, eval_ds
            )
            if after is not last:  # an earlier step was kept
                after.metrics |= check_metrics(model, check_ds)
                folder.save_model(model)
        folder.write_run("run.trec", after.run, tag="finetuned")
        _write_eval_history(folder, before, result, last, result.stopped_at or cfg.steps)
        job.before, job.after = before.metrics, after.metrics
        folder.write_json("metrics.json", summary | {"before": before.metrics, "after": after.metrics})
        build_report(folder.path, summary=f"Training run on {source}: {text}")
    else:
        folder.write_json("metrics.json", summary)
        columns = {"final loss": {"loss": result.history[-1].loss}} if result.history else {}
        write_report(
            folder / "report.md",
            title=f"Training run: {cfg.loss} on {source}",
            summary=text,
            columns=columns,
            figures={"Training loss": "loss.png"},
        )
    _model_card(folder, model, cfg, run, examples, job, (before, after) if job.after is not None else None, eval_ds)
    if not cfg.keep_final_checkpoint:
        remove_checkpoints(folder.path)  # the run is done and reported: its model is in model/
    return job


def _negatives_stats(examples) -> dict[str, Any]:
    with_neg = [len(e.negatives) for e in examples if e.negatives]
    return {
        "examples with given negatives": len(with_neg),
        "given negatives per such example (mean)": round(sum(with_neg) / len(with_neg), 2) if with_neg else 0,
        "examples with teacher scores": sum(1 for e in examples if e.scores is not None),
    }


def _model_card(folder: RunFolder, model, cfg: TrainConfig, run, examples, job: TrainJob, evals, eval_ds) -> None:
    """``model/README.md``: base model, data and hashes, config, training, metrics against the start."""
    from rankwise.families import family_of
    from rankwise.metrics.compare import compare_runs
    from rankwise.report.model_card import file_digests, write_model_card

    comparison = None
    if evals is not None:
        before, after = evals
        runs = {"starting model": before.run, "fine-tuned": after.run}
        comparison = compare_runs(eval_ds.qrels, runs, baseline="starting model", metrics=list(DEFAULT_METRICS))
    sources = [Path(p) for p in ([run["data"]] if run["data"] is not None else []) + _train_files(run["train_file"])]
    training = {
        "steps": job.steps, "examples": job.examples, "seconds": job.seconds, "loss": cfg.loss,
        "negatives": cfg.negatives or "in-batch", **_negatives_stats(examples),
        "evaluated on": f"{Path(run['data']).name} ({run['eval_split']})" if evals is not None else "nothing",
    }  # fmt: skip
    write_model_card(
        folder.model_dir,
        family=family_of(model).name,
        base_model=cfg.model or "sentence-transformers/all-MiniLM-L6-v2",
        data={"names": [p.name for p in sources], "sha256": file_digests(sources)},
        config=cfg.to_toml_dict(),
        training=training,
        comparison=comparison,
        command=f"rankwise train --config {folder / CONFIG} --out NEW_RUN",
    )


def _write_eval_history(folder: RunFolder, before: EvalResult, result, last: EvalResult, last_step: int) -> None:
    """Step 0 (before), the periodic evaluations, and the last step's model (where early stopping
    ended the run, else the final step), for the report's curve."""
    history = [{"step": 0, "metrics": before.metrics}] + [e for e in result.evals if e["step"] < last_step]
    history.append({"step": last_step, "metrics": last.metrics})
    folder.write_json(EVAL_HISTORY, history)

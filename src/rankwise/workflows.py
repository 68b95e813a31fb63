"""End-to-end jobs behind the CLI: each writes a self-describing run folder.

A run folder holds ``config.toml`` (enough to re-run it), ``metrics.json``, the TREC run file
(``run.trec``), the model when one was trained, and ``report.md`` with its figures.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w
import torch

from rankwise import __version__
from rankwise.data import examples_from_qrels, load_beir, load_examples, write_run
from rankwise.data.beir import Dataset
from rankwise.data.stdlib_code import ensure_built
from rankwise.errors import RankwiseError
from rankwise.index.retrieve import bm25_run
from rankwise.io import run_folder, write_json, write_text
from rankwise.metrics import DEFAULT_METRICS, evaluate
from rankwise.metrics.model import EvalResult, evaluate_model
from rankwise.models import BiEncoder, CrossEncoder
from rankwise.progress import console, task
from rankwise.report import training_loss, write_report
from rankwise.report.run_report import EVAL_HISTORY, build_report
from rankwise.training import TrainConfig, train
from rankwise.training.loop import check_resume, latest_checkpoint, remove_checkpoints
from rankwise.training.tracking import Tracker

Log = Callable[[str], None]


def _write_config(
    out: Path, run: dict[str, Any], train_cfg: TrainConfig | None = None, extra: dict[str, Any] | None = None
) -> None:
    doc: dict[str, Any] = {"run": {k: v for k, v in run.items() if v is not None}}
    if train_cfg is not None:
        doc["train"] = train_cfg.to_toml_dict()
    if extra:
        doc.update(extra)
    doc["environment"] = {"rankwise": __version__, "torch": torch.__version__, "python": platform.python_version()}
    write_text(out / "config.toml", tomli_w.dumps(doc))


def _portable(path: str | Path | None) -> str | None:
    """A path stored in config.toml resolves from anywhere (absolute); other names stay as given."""
    if path is None:
        return None
    return str(Path(path).resolve()) if Path(path).exists() else str(path)


# ----------------------------------------------------------------------------- eval
def run_eval(
    data: str | Path,
    split: str,
    out: str | Path,
    *,
    model_name: str | None = None,
    k: int = 100,
    allow_missing: bool = False,
    max_length: int | None = None,
    device: str | None = None,
    retriever: str = "dense",
    overwrite: bool = False,
    show_progress: bool = True,
    ray: str | None = None,
    workers: int = 2,
) -> dict[str, float]:
    """Retrieve the split's top ``k`` with ``model_name`` (``retriever="dense"``) or BM25 and score it.
    ``ray``: encode the corpus on that Ray cluster into an on-disk store first."""
    if retriever not in ("dense", "bm25"):
        raise RankwiseError(f"retriever {retriever!r}: expected dense or bm25")
    with run_folder(out, overwrite=overwrite) as out:
        dataset = load_beir(data, split, allow_missing=allow_missing).own_split()
        if retriever == "bm25":
            model, name = "bm25", "bm25"
        else:
            model = BiEncoder.load(model_name, query_max_length=max_length, doc_max_length=max_length, device=device)
            name = model.name
            texts = [doc.full_text for doc in dataset.corpus.values()]
            cut = model.count_truncated(texts, "doc")
            if cut:
                console.print(
                    f"{cut} of {len(texts)} documents are longer than {model.config.doc_max_length} tokens: "
                    "their ends are not encoded (--max-length raises the limit)"
                )
        embeddings = None
        if ray is not None and retriever == "dense":
            from rankwise.index.distributed_encode import corpus_embeddings

            embeddings = corpus_embeddings(
                dataset,
                model_name,
                address=ray,
                workers=workers,
                max_length=max_length,
                loaded=model,
                log=console.print,
            )
        res = evaluate_model(
            model, dataset, k, show_progress=show_progress, cache=retriever == "dense", embeddings=embeddings
        )
        write_run(out / "run.trec", res.run, tag=Path(str(model_name or name)).name if retriever == "dense" else "bm25")
        write_json(out / "metrics.json", res.metrics)
        write_json(out / "per_query.json", {"ndcg@10": res.per_query["ndcg@10"]})
        _write_config(
            out,
            {
                "command": "eval",
                "data": str(Path(data).resolve()),
                "split": split,
                "retriever": retriever,
                "model": _portable(model_name) if retriever == "dense" else None,
                "k": k,
                **(
                    {"query_max_length": model.config.query_max_length, "doc_max_length": model.config.doc_max_length}
                    if retriever == "dense"
                    else {}
                ),
            },
        )
        build_report(
            out,
            summary=f"Evaluation of {name} on {Path(data).name} ({split}): {len(dataset.qrels)} judged queries, "
            f"{len(dataset.corpus)} documents.",
            seed=0,
        )
        return res.metrics


# --------------------------------------------------------------------------- rerank
def run_rerank(
    data: str | Path,
    split: str,
    out: str | Path,
    *,
    reranker: str,
    retriever: str | None = None,
    first_run: str | Path | None = None,
    depth: int = 100,
    interpolate: float = 0.0,
    allow_missing: bool = False,
    device: str | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Retrieve the top ``depth`` (dense ``retriever``, ``"bm25"``, or a TREC ``first_run``), rerank
    with ``reranker`` (a cross-encoder folder, its scores interpolated with the first stage's at
    weight ``interpolate``, or ``prf:...``); a run folder with both stages' runs, metrics and
    per-query latency."""
    from rankwise.index.rerank import Pipeline, first_stage, second_stage
    from rankwise.metrics.model import score_run

    with run_folder(out, overwrite=overwrite) as out:
        dataset = load_beir(data, split, allow_missing=allow_missing).own_split()
        first = first_stage(retriever, run_file=first_run, device=device)
        second = second_stage(reranker, first=first, device=device, interpolate=interpolate)
        res = Pipeline(first, second, depth=depth).run(dataset, show_progress=show_progress)
        before, after = score_run(dataset, res.first), score_run(dataset, res.run)
        write_run(out / "run-first.trec", res.first, tag=Path(first.name).name or "first")
        write_run(out / "run.trec", res.run, tag=Path(second.name).name or "reranked")
        summary = {"first": before.metrics, "reranked": after.metrics, "latency": res.latency_summary()}
        write_json(out / "metrics.json", summary)
        write_json(out / "per_query.json", {"ndcg@10": after.per_query["ndcg@10"]})
        write_json(out / "latency.json", res.latency_ms)
        _write_config(
            out,
            {
                "command": "rerank",
                "data": str(Path(data).resolve()),
                "split": split,
                "retriever": None if first_run else (retriever if retriever == "bm25" else _portable(retriever)),
                "first_run": _portable(first_run),
                "reranker": reranker if reranker.startswith("prf") else _portable(reranker),
                "depth": depth,
                "interpolate": interpolate,
            },
        )
        lat = res.latency_summary()
        build_report(
            out,
            baseline=out / "run-first.trec",
            summary=f"{first.name} top {depth} reranked by {second.name} on {Path(data).name} ({split}): nDCG@10 "
            f"{before.metrics['ndcg@10']:.4f} -> {after.metrics['ndcg@10']:.4f}; {lat.get('first_ms_mean', 0):.1f} ms "
            f"+ {lat.get('second_ms_mean', 0):.1f} ms a query.",
            seed=0,
        )
        return summary


# ---------------------------------------------------------------------------- train
def _train_with_progress(
    model: BiEncoder | CrossEncoder,
    examples,
    cfg: TrainConfig,
    out: Path,
    resume: bool,
    show_progress: bool,
    eval_ds: Dataset | None = None,
    before: dict[str, float] | None = None,
    train_ds: Dataset | None = None,
):
    """Train with a progress bar, TensorBoard/MLflow logging and, with ``cfg.eval_every``,
    evaluation on ``eval_ds`` during training (``before``: the metrics at step 0)."""
    tracker = Tracker(out, run_name=out.name, params=cfg.to_toml_dict())
    if before:
        tracker.log(0, {f"eval/{k}": v for k, v in before.items()})

    def on_step(s) -> None:
        advance(
            1,
            info=f"loss {s.loss:.4f}  lr {s.lr:.2e}  {s.examples_per_s:.1f} ex/s  {s.tokens_per_s:.0f} tok/s  "
            f"pad {100 * s.padding:.0f}%  peak {s.peak_rss_mb / 1024:.1f} GB",
        )
        tracker.log(
            s.step,
            {
                "train/loss": s.loss,
                "train/lr": s.lr,
                "train/examples_per_s": s.examples_per_s,
                "train/tokens_per_s": s.tokens_per_s,
                "train/padding": s.padding,
                "train/peak_rss_mb": s.peak_rss_mb,
            }
            | {f"train/{k}": v for k, v in s.extra.items()},
        )

    def evaluator(step: int) -> dict[str, float]:
        metrics = evaluate_model(model, eval_ds).metrics
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
                corpus=train_ds,
                resume=resume,
                on_step=on_step,
                evaluator=evaluator if eval_ds is not None and cfg.eval_every else None,
                show_progress=show_progress,
                log=console.print,
            )
    finally:
        tracker.close()


def _finish_training(model: BiEncoder | CrossEncoder, result, out: Path) -> None:
    model.save(out / "model")
    write_json(out / "history.json", [h.__dict__ for h in result.history])
    training_loss([h.step for h in result.history], [h.loss for h in result.history], out / "loss.png")


def _write_eval_history(out: Path, cfg: TrainConfig, before: EvalResult, result, after: EvalResult) -> None:
    """Step 0 (before), the periodic evaluations, and the final model, for the report's curve."""
    history = [{"step": 0, "metrics": before.metrics}] + [e for e in result.evals if e["step"] < cfg.steps]
    history.append({"step": cfg.steps, "metrics": after.metrics})
    write_json(out / EVAL_HISTORY, history)


def _new_model(cfg: TrainConfig) -> BiEncoder | CrossEncoder:
    if cfg.kind == "cross-encoder":
        return CrossEncoder(cfg.model, max_length=cfg.pair_max_length, seed=cfg.seed)
    return BiEncoder.load(cfg.model, query_max_length=cfg.query_max_length, doc_max_length=cfg.doc_max_length)


def _train_worker(data, out, cfg: TrainConfig, split, train_file, resume, allow_missing) -> dict[str, Any]:
    """A torch.distributed process other than rank 0: waits for rank 0 to set up the run folder,
    trains its share of every batch, writes nothing."""
    import torch.distributed as dist

    status: list[str | None] = [None]
    dist.broadcast_object_list(status, src=0)
    if status[0] is not None:  # rank 0 refused the run and says why
        raise SystemExit(1)
    dataset = load_beir(data, split, allow_missing=allow_missing)
    examples = load_examples(train_file, dataset) if train_file else examples_from_qrels(dataset)
    train(_new_model(cfg), examples, cfg, Path(out), corpus=dataset.own_split(), resume=resume, log=lambda _: None)
    return {}


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


def run_train(
    data: str | Path,
    out: str | Path,
    cfg: TrainConfig,
    *,
    split: str = "train",
    train_file: str | Path | None = None,
    eval_split: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    allow_missing: bool = False,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Train in a run folder. Under torchrun (or ``rankwise train --nproc N``) every process runs
    this; rank 0 writes the folder, logs and reports, the others train their share."""
    from rankwise.device import resolve_device
    from rankwise.distributed import init_from_env

    shard = init_from_env(resolve_device(cfg.device))
    if shard is not None and shard.rank != 0:
        return _train_worker(data, out, cfg, split, train_file, resume, allow_missing)
    gate = _WorkerGate(shard)
    try:
        return _run_train(
            data, out, cfg, split, train_file, eval_split, resume, overwrite, allow_missing, show_progress, gate
        )
    except BaseException as exc:
        gate.fail(exc)
        raise


def _run_train(
    data, out, cfg, split, train_file, eval_split, resume, overwrite, allow_missing, show_progress, gate: _WorkerGate
) -> dict[str, Any]:
    with run_folder(out, resume=resume, overwrite=overwrite) as out:
        dataset = load_beir(data, split, allow_missing=allow_missing)
        examples = load_examples(train_file, dataset) if train_file else examples_from_qrels(dataset)
        if resume:  # refuse other options (or another number of processes) before anything is written
            check_resume(out, cfg, world=gate.shard.world if gate.shard else 1)
        _write_config(
            out,
            {
                "command": "train",
                "data": _portable(data),
                "split": split,
                "train_file": _portable(train_file),
                "eval_split": eval_split,
            },
            cfg,
        )
        model = _new_model(cfg)
        before = None
        eval_ds = None
        if eval_split:
            eval_ds = load_beir(data, eval_split, allow_missing=allow_missing).own_split()
            before = evaluate_model(model, eval_ds, show_progress=show_progress, cache=True)
            write_run(out / "run-before.trec", before.run, tag="before")
        gate.release()  # the folder is ready: the other processes start training
        result = _train_with_progress(
            model,
            examples,
            cfg,
            out,
            resume,
            show_progress,
            eval_ds,
            before.metrics if before else None,
            dataset.own_split(),
        )
        _finish_training(model, result, out)
        if not cfg.keep_final_checkpoint:
            remove_checkpoints(out)  # the run is done: its model is in model/
        summary: dict[str, Any] = {"steps": cfg.steps, "examples": len(examples), "seconds": round(result.seconds, 1)}
        text = f"{len(examples)} training examples, {cfg.steps} steps of batch {cfg.batch_size} with {cfg.loss}, {result.seconds:.0f} s."
        if eval_ds is not None and before is not None:
            after = evaluate_model(model, eval_ds, show_progress=show_progress)
            write_run(out / "run.trec", after.run, tag="finetuned")
            _write_eval_history(out, cfg, before, result, after)
            summary.update({"before": before.metrics, "after": after.metrics})
            write_json(out / "metrics.json", summary)
            build_report(out, summary=f"Training run on {Path(data).name}: {text}")
        else:
            write_json(out / "metrics.json", summary)
            write_report(
                out / "report.md",
                title=f"Training run: {cfg.loss} on {Path(data).name}",
                summary=text,
                columns={"final loss": {"loss": result.history[-1].loss}},
                figures={"Training loss": "loss.png"},
            )
        return summary


# ----------------------------------------------------------------------------- demo
@dataclass
class DemoConfig:
    """Sized so that set-up plus demo end within 15 minutes on a 2-core CPU (~2 s a step here).

    Chosen on the dev split (nDCG@10, base 0.657): 90 steps at lr 1e-4 gave 0.726, 180 steps at
    1e-4 0.734, 180 at 5e-5 0.733, 90 at 2e-4 0.710.
    """

    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            steps=180,
            batch_size=32,
            lr=1e-4,
            warmup_ratio=0.1,
            query_max_length=32,
            doc_max_length=128,
            checkpoint_every=60,
        )
    )
    eval_max_length: int = 128


def run_demo(
    out: str | Path = "runs/demo",
    *,
    data_dir: str | Path | None = None,
    steps: int | None = None,
    show_progress: bool = True,
    log: Log = console.print,
) -> dict[str, dict[str, float]]:
    """The demo in ``out``: a killed demo continues from its last checkpoint, a finished one is replaced."""
    resume = latest_checkpoint(out) is not None
    with run_folder(out, resume=resume, overwrite=not resume) as folder:
        return _demo(folder, data_dir, steps, show_progress, log, resume)


def _demo(
    out: Path, data_dir: str | Path | None, steps: int | None, show_progress: bool, log: Log, resume: bool
) -> dict[str, dict[str, float]]:
    t0 = time.perf_counter()
    demo = DemoConfig()
    cfg = demo.train.model_copy(update={"steps": steps} if steps else {})
    log("[bold]1/5[/] building the stdlib-code dataset from this Python's standard library")
    data = ensure_built(data_dir)
    test = load_beir(data, "test").own_split()
    train_ds = load_beir(data, "train")
    examples = examples_from_qrels(train_ds)
    log(
        f"    {len(examples)} training queries; test: {len(test.qrels)} queries over {len(test.corpus)} documents of the test modules"
    )
    log("[bold]2/5[/] BM25 baseline on test")
    bm25 = bm25_run(test, 100, code=True, show_progress=show_progress)
    bm25_metrics = evaluate(test.qrels, bm25, DEFAULT_METRICS)
    write_run(out / "run-bm25.trec", bm25, tag="bm25")
    log("[bold]3/5[/] base model (all-MiniLM-L6-v2) on test")
    model = BiEncoder.load(cfg.model, query_max_length=demo.eval_max_length, doc_max_length=demo.eval_max_length)
    before = evaluate_model(model, test, show_progress=show_progress, cache=True)
    write_run(out / "run-before.trec", before.run, tag="base")
    log(f"[bold]4/5[/] fine-tuning: {cfg.steps} steps, batch {cfg.batch_size}, {cfg.loss}")
    _write_config(
        out,
        {"command": "demo", "data": str(data), "split": "train", "eval_split": "test"},
        cfg,
        {"demo": {"eval_max_length": demo.eval_max_length}},
    )
    result = _train_with_progress(model, examples, cfg, out, resume, show_progress, None, None, train_ds.own_split())
    _finish_training(model, result, out)
    remove_checkpoints(out)
    model.config.query_max_length = model.config.doc_max_length = demo.eval_max_length
    log("[bold]5/5[/] fine-tuned model on test")
    after = evaluate_model(model, test, show_progress=show_progress)
    write_run(out / "run.trec", after.run, tag="finetuned")
    metrics = {"before": before.metrics, "after": after.metrics, "bm25": bm25_metrics}
    write_json(out / "metrics.json", metrics)
    gain = 100 * (after.metrics["ndcg@10"] - before.metrics["ndcg@10"])
    build_report(
        out,
        others=[out / "run-bm25.trec"],
        summary=(
            f"rankwise demo: fine-tuning all-MiniLM-L6-v2 on stdlib-code. Test split: {len(test.qrels)} docstring queries over "
            f"{len(test.corpus)} functions of modules unseen in training. Fine-tuning ({cfg.steps} steps, batch {cfg.batch_size}, "
            f"{cfg.loss}) changed nDCG@10 by {gain:+.1f} points in {time.perf_counter() - t0:.0f} s."
        ),
    )
    return metrics


# ------------------------------------------------------------------------------ ltr
def letor_path(name: str | Path, data: str | Path | None = None) -> Path:
    """A LETOR file: a path, or within the folder ``data`` a split name (``vali`` -> ``vali.txt``,
    ``train`` -> ``rank.train``)."""
    if data is None:
        return Path(name)
    folder = Path(data)
    for candidate in (folder / str(name), folder / f"{name}.txt", folder / f"rank.{name}"):
        if candidate.is_file():
            return candidate
    raise RankwiseError(f"{folder}: no LETOR file for {str(name)!r} (tried {name}, {name}.txt, rank.{name})")


def _save_ltr_model(model, normalizer, out: Path) -> None:
    model.save(out)
    state = {"mode": normalizer.mode}
    if normalizer.mean is not None:
        state |= {"mean": normalizer.mean.tolist(), "std": normalizer.std.tolist()}
    write_json(out / "normalizer.json", state)


def load_ltr_model(path: str | Path):
    """A scorer saved by ``rankwise ltr train`` with its feature normalisation."""
    import json

    import numpy as np

    from rankwise.data.letor import Normalizer
    from rankwise.models.feature_scorer import load_scorer

    path = Path(path)
    model = load_scorer(path)
    norm = Normalizer()
    if (path / "normalizer.json").is_file():
        state = json.loads((path / "normalizer.json").read_text(encoding="utf-8"))
        norm = Normalizer(state["mode"])
        if "mean" in state:
            norm.mean, norm.std = np.asarray(state["mean"], np.float32), np.asarray(state["std"], np.float32)
    return model, norm


def _write_ltr_eval(out: Path, data, res: EvalResult, tag: str) -> None:
    from rankwise.data.trec import write_qrels

    write_run(out / "run.trec", res.run, tag=tag)
    write_qrels(
        out / "qrels.tsv", {q: d for q, d in data.qrels().items() if q in res.per_query[next(iter(res.per_query))]}
    )


def run_ltr_train(
    train_file: str | Path,
    out: str | Path,
    cfg: TrainConfig,
    *,
    scorer: str = "mlp",
    normalize: str = "query",
    valid_file: str | Path | None = None,
    valid_share: float = 0.2,
    test_file: str | Path | None = None,
    overwrite: bool = False,
    resume: bool = False,
    log: Log = console.print,
) -> dict[str, Any]:
    """Train a feature scorer on a LETOR file with any loss; every ``cfg.eval_every`` steps (default
    25) it is scored on the validation queries (``valid_file``, else ``valid_share`` of the training
    queries, seeded) and the best weights are kept; then scored on ``test_file``."""
    import copy

    from rankwise.data.letor import Normalizer, read_letor
    from rankwise.metrics.model import evaluate_lists
    from rankwise.models.feature_scorer import make_scorer

    with run_folder(out, resume=resume, overwrite=overwrite) as out:
        data = read_letor(train_file)
        valid = read_letor(valid_file, n_features=data.n_features) if valid_file else None
        if valid is None:
            data, valid = data.split(valid_share, seed=cfg.seed)
        norm = Normalizer(normalize).fit(data)
        data, valid = norm.transform(data), norm.transform(valid)
        every = cfg.eval_every or 25
        _write_config(
            out,
            {
                "command": "ltr-train",
                "train_file": _portable(train_file),
                "valid_file": _portable(valid_file),
                "test_file": _portable(test_file),
                "scorer": scorer,
                "normalize": normalize,
            },
            cfg,
        )
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)  # the scorer's initial weights
            model = make_scorer(scorer, data.n_features)
        best: dict[str, Any] = {"ndcg@10": -1.0, "step": 0, "state": None}

        def evaluator(step: int) -> dict[str, float]:
            metrics = evaluate_lists(model, valid).metrics
            if metrics["ndcg@10"] > best["ndcg@10"]:
                best.update({"ndcg@10": metrics["ndcg@10"], "step": step, "state": copy.deepcopy(model.state_dict())})
            return metrics

        result = train(
            model,
            data.examples(),
            cfg.model_copy(update={"eval_every": every}),
            out,
            resume=resume,
            evaluator=evaluator,
            log=log,
        )
        if best["state"] is not None:
            model.load_state_dict(best["state"])
        _save_ltr_model(model, norm, out / "model")
        write_json(out / "history.json", [h.__dict__ for h in result.history])
        remove_checkpoints(out)
        summary: dict[str, Any] = {
            "best_step": best["step"],
            "valid": evaluate_lists(model, valid).metrics,
            "evals": result.evals,
            "seconds": round(result.seconds, 1),
        }
        if test_file is not None:
            test = norm.transform(read_letor(test_file, n_features=data.n_features))
            res = evaluate_lists(model, test)
            summary["test"] = res.metrics
            _write_ltr_eval(out, test, res, scorer)
        write_json(out / "metrics.json", summary)
        return summary


def run_ltr_eval(model_dir: str | Path, data_file: str | Path, out: str | Path, *, overwrite: bool = False) -> dict:
    from rankwise.data.letor import read_letor
    from rankwise.metrics.model import evaluate_lists

    with run_folder(out, overwrite=overwrite) as out:
        model, norm = load_ltr_model(model_dir)
        data = norm.transform(read_letor(data_file, n_features=model.config["n_features"]))
        res = evaluate_lists(model, data)
        _write_ltr_eval(out, data, res, Path(model_dir).name)
        write_json(out / "metrics.json", res.metrics)
        _write_config(out, {"command": "ltr-eval", "model": _portable(model_dir), "data_file": _portable(data_file)})
        return res.metrics


# ---------------------------------------------------------------------------- sweep
def recipe_trainer(
    data: str | Path,
    base: TrainConfig,
    *,
    split: str = "train",
    dev_split: str = "dev",
    test_split: str = "test",
    log: Log = console.print,
) -> tuple[Callable[[str, dict[str, Any], int, Path], dict[str, Any]], Callable[[Path], dict[str, float]]]:
    """``(train_one, test_one)`` for :func:`rankwise.training.sweep.sweep`: ``train_one(name, options,
    steps, folder)`` trains the dual encoder with ``base`` updated by ``options`` on ``split`` and
    returns its dev nDCG@10 (and per-query values); ``test_one(folder)`` scores its model on test."""
    train_ds = load_beir(data, split)
    dev = load_beir(data, dev_split).own_split()

    def train_one(name: str, options: dict[str, Any], steps: int, folder: Path) -> dict[str, Any]:
        cfg = base.model_copy(update={**options, "steps": steps})
        model = BiEncoder.load(cfg.model, query_max_length=cfg.query_max_length, doc_max_length=cfg.doc_max_length)
        log(f"  training {name} for {steps} steps")
        train(model, train_ds, cfg, folder, resume=True, log=lambda _: None)
        model.save(folder / "model")
        remove_checkpoints(folder)
        res = evaluate_model(model, dev)
        return {"dev": res.metrics, "per_query": list(res.per_query["ndcg@10"].values())}

    def test_one(folder: Path) -> dict[str, float]:
        test = load_beir(data, test_split).own_split()
        return evaluate_model(BiEncoder.load(str(folder / "model")), test).metrics

    return train_one, test_one


def run_sweep(
    data: str | Path,
    out: str | Path,
    budget: int,
    *,
    base: TrainConfig | None = None,
    recipes: dict[str, dict[str, Any]] | None = None,
    split: str = "train",
    dev_split: str = "dev",
    test_split: str = "test",
    eta: int = 2,
    log: Log = console.print,
):
    """:func:`rankwise.training.sweep.sweep` over dual-encoder recipes on ``data``: trained on
    ``split``, chosen on ``dev_split`` (nDCG@10), the winner scored once on ``test_split``."""
    from rankwise.training.sweep import DEFAULT_RECIPES, sweep

    base = base or TrainConfig()
    recipes = recipes or DEFAULT_RECIPES
    for name, options in recipes.items():  # every recipe parses before any training
        try:
            base.model_copy(update=options)
        except Exception as exc:  # pydantic's or a registry's error, said with the recipe's name
            raise RankwiseError(f"recipe {name!r}: {exc}".splitlines()[0]) from None
    train_one, test_one = recipe_trainer(data, base, split=split, dev_split=dev_split, test_split=test_split, log=log)
    return sweep(train_one, recipes, budget, out, test_one=test_one, eta=eta, log=log)

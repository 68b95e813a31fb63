"""``rankwise ltr train|eval``: learning to rank on feature vectors (SVMlight / LETOR files) with
any loss of the library; the best weights on validation are kept."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rankwise.errors import RankwiseError
from rankwise.jobs.folder import RunFolder, portable
from rankwise.metrics.model import EvalResult, evaluate_lists
from rankwise.progress import console
from rankwise.training import TrainConfig, train
from rankwise.training.loop import remove_checkpoints

Log = Callable[[str], None]


@dataclass
class LtrTrainJob:
    best_step: int
    valid: dict[str, float]
    seconds: float
    folder: Path
    test: dict[str, float] | None = None
    evals: list[dict] = field(default_factory=list)


@dataclass
class LtrEvalJob:
    metrics: dict[str, float]
    folder: Path


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


def _save_ltr_model(model, normalizer, folder: RunFolder) -> None:
    folder.save_model(model)
    state = {"mode": normalizer.mode}
    if normalizer.mean is not None:
        state |= {"mean": normalizer.mean.tolist(), "std": normalizer.std.tolist()}
    folder.write_json("model/normalizer.json", state)


def load_ltr_model(path: str | Path):
    """A scorer saved by ``rankwise ltr train`` with its feature normalisation."""
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


def _write_ltr_eval(folder: RunFolder, data, res: EvalResult, tag: str) -> None:
    """The run and the qrels it was scored against, over the same queries (those with a relevant
    row), so ``compare FOLDER --qrels FOLDER/qrels.tsv`` gives metrics.json's figures."""
    from rankwise.data.trec import write_qrels

    scored = res.per_query[next(iter(res.per_query))]
    folder.write_run("run.trec", {q: r for q, r in res.run.items() if q in scored}, tag=tag)
    write_qrels(folder / "qrels.tsv", {q: d for q, d in data.qrels().items() if q in scored})


def _read_inputs(train_file, valid_file, test_file, valid_share: float, seed: int, normalize: str):
    """Every file read, split and normalised before any training (a bad test file fails first)."""
    from rankwise.data.letor import Normalizer, read_letor

    data = read_letor(train_file)
    valid = read_letor(valid_file, n_features=data.n_features) if valid_file else None
    test = read_letor(test_file, n_features=data.n_features) if test_file else None
    if valid is None:
        data, valid = data.split(valid_share, seed=seed)
    norm = Normalizer(normalize).fit(data)
    return data, valid, test, norm


class _Best:
    """The best weights on validation, every ``every`` steps and at the last step."""

    def __init__(self, model, valid) -> None:
        self.model, self.valid = model, valid
        self.ndcg, self.step, self.state = -1.0, 0, None

    def __call__(self, step: int) -> dict[str, float]:
        metrics = evaluate_lists(self.model, self.valid).metrics
        if metrics["ndcg@10"] > self.ndcg:
            self.ndcg, self.step, self.state = metrics["ndcg@10"], step, copy.deepcopy(self.model.state_dict())
        return metrics


def ltr_train(
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
) -> LtrTrainJob:
    """Train a feature scorer on a LETOR file with any loss; every ``cfg.eval_every`` steps (default
    25, and always at the last step) it is scored on the validation queries (``valid_file``, else
    ``valid_share`` of the training queries, seeded) and the best weights are kept; then scored on
    ``test_file``."""
    import torch

    from rankwise.models.feature_scorer import make_scorer

    data, valid, test, norm = _read_inputs(train_file, valid_file, test_file, valid_share, cfg.seed, normalize)
    every = min(cfg.eval_every or 25, cfg.steps)
    cfg = cfg.model_copy(update={"eval_every": every})
    with RunFolder.open(out, resume=resume, overwrite=overwrite) as folder:
        if resume:  # a finished run is refused, options are checked against config.toml
            from rankwise.jobs.train import check_resumable

            check_resumable(folder, cfg, 1)
        data, valid = norm.transform(data), norm.transform(valid)
        files = {"train_file": train_file, "valid_file": valid_file, "test_file": test_file}
        run = {"command": "ltr-train", **{k: portable(v) for k, v in files.items()}}
        folder.write_config(run | {"scorer": scorer, "normalize": normalize}, cfg)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)  # the scorer's initial weights
            model = make_scorer(scorer, data.n_features)
        best = _Best(model, valid)
        result = train(model, data.examples(), cfg, folder.path, resume=resume, evaluator=best, log=log)
        if not result.evals or result.evals[-1]["step"] != cfg.steps:
            result.evals.append({"step": cfg.steps, "metrics": best(cfg.steps)})
        if best.state is not None:
            model.load_state_dict(best.state)
        _save_ltr_model(model, norm, folder)
        folder.write_json("history.json", [h.__dict__ for h in result.history])
        job = LtrTrainJob(best.step, evaluate_lists(model, valid).metrics, round(result.seconds, 1), folder.path)
        job.evals = result.evals
        if test is not None:
            test = norm.transform(test)
            res = evaluate_lists(model, test)
            job.test = res.metrics
            _write_ltr_eval(folder, test, res, scorer)
        summary = {"best_step": job.best_step, "valid": job.valid, "evals": job.evals, "seconds": job.seconds}
        folder.write_json("metrics.json", summary | ({"test": job.test} if job.test else {}))
        remove_checkpoints(folder.path)
        return job


def ltr_eval(model_dir: str | Path, data_file: str | Path, out: str | Path, *, overwrite: bool = False) -> LtrEvalJob:
    """Score a LETOR file with a trained scorer: nDCG@5, nDCG@10, MAP (trec_eval conventions)."""
    from rankwise.data.letor import read_letor

    model, norm = load_ltr_model(model_dir)
    data = norm.transform(read_letor(data_file, n_features=model.config["n_features"]))
    with RunFolder.open(out, overwrite=overwrite) as folder:
        res = evaluate_lists(model, data)
        _write_ltr_eval(folder, data, res, Path(model_dir).name)
        folder.write_json("metrics.json", res.metrics)
        folder.write_config({"command": "ltr-eval", "model": portable(model_dir), "data_file": portable(data_file)})
        return LtrEvalJob(res.metrics, folder.path)

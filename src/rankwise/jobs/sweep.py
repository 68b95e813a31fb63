"""``rankwise sweep``: successive halving over named dual-encoder recipes on the dev split; the
winner's config is saved and scored once on test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rankwise.data import load_beir
from rankwise.errors import ConfigError
from rankwise.jobs.folder import portable
from rankwise.metrics.model import evaluate_model
from rankwise.progress import console
from rankwise.training import TrainConfig, train
from rankwise.training.loop import remove_checkpoints
from rankwise.training.sweep import SweepResult

Log = Callable[[str], None]


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
    from rankwise.models import BiEncoder

    train_ds = load_beir(data, split)
    dev = load_beir(data, dev_split).own_split()

    def train_one(name: str, options: dict[str, Any], steps: int, folder: Path) -> dict[str, Any]:
        cfg = base.model_copy(update={**options, "steps": steps})
        model = BiEncoder.load(cfg.model)
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
) -> SweepResult:
    """:func:`rankwise.training.sweep.sweep` over dual-encoder recipes on ``data``: trained on
    ``split``, chosen on ``dev_split`` (nDCG@10), the winner scored once on ``test_split``."""
    from rankwise.training.sweep import DEFAULT_RECIPES, sweep

    base = base or TrainConfig()
    recipes = recipes or DEFAULT_RECIPES
    for name, options in recipes.items():  # every recipe parses before any training
        try:
            base.model_copy(update=options)
        except Exception as exc:  # pydantic's or a registry's error, said with the recipe's name
            raise ConfigError(f"recipe {name!r}: {exc}".splitlines()[0]) from None
    train_one, test_one = recipe_trainer(data, base, split=split, dev_split=dev_split, test_split=test_split, log=log)
    shared = {k: v for k, v in base.to_toml_dict().items() if k != "steps"}
    run = {"data": portable(data), "split": split, "eval_split": dev_split}
    return sweep(train_one, recipes, budget, out, test_one=test_one, eta=eta, log=log, shared=shared, run=run)


def read_recipes(path: Path | None) -> dict[str, dict[str, Any]] | None:
    """A TOML file with a table per recipe: ``[NAME] loss=..., negatives=...``."""
    from rankwise.training.config import tomllib

    if path is None:
        return None
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None

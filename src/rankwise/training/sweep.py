"""``rankwise sweep``: successive halving over named recipes, chosen on dev, reported once on test.

Successive halving (Jamieson and Talwalkar, AISTATS 2016): every recipe trains a few steps and is
scored on the dev split; the best ``1/eta`` go on to train ``eta`` times as many steps, and so on
until one is left. The step counts are set so that all trainings together use at most ``budget``
optimizer steps. Each training is a run folder under ``out/runs/`` with its dev result; a re-run
skips the finished ones, so a killed sweep continues. The winner's options are saved as
``out/best.toml`` (a config ``rankwise train --config`` reads) and its model is scored once on
the test split: the sweep's only test figure.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rankwise.errors import ConfigError
from rankwise.io import write_json, write_text

DEFAULT_RECIPES: dict[str, dict[str, Any]] = {
    "infonce": {"loss": "infonce:temperature=0.05"},
    "infonce-t0.1": {"loss": "infonce:temperature=0.1"},
    "bm25-negatives": {"loss": "infonce:temperature=0.05", "negatives": "bm25:window=1-30,k=7"},
    "ngame": {"loss": "infonce:temperature=0.05", "batching": "ngame:every=30,cluster_size=8"},
    "mw": {"loss": "mw:global"},
    "lambdaloss": {"loss": "lambdaloss:ndcg2pp"},
}


def schedule(n: int, budget: int, eta: int = 2) -> list[tuple[int, int]]:
    """``[(recipes, steps each), ...]`` per round, using at most ``budget`` steps in all."""
    if n < 1 or eta < 2:
        raise ConfigError("a sweep needs at least one recipe and eta >= 2")
    counts = [n]
    while counts[-1] > 1:
        counts.append(math.ceil(counts[-1] / eta))
    weight = sum(c * eta**r for r, c in enumerate(counts))
    base = budget // weight
    if base < 1:
        raise ConfigError(f"budget {budget} is too small for {n} recipes (at least {weight} steps)")
    return [(c, base * eta**r) for r, c in enumerate(counts)]


@dataclass
class SweepResult:
    rounds: list[list[dict[str, Any]]] = field(default_factory=list)  # per round: name, steps, dev metric, CI
    best: str = ""
    best_options: dict[str, Any] = field(default_factory=dict)
    steps_used: int = 0
    test: dict[str, float] = field(default_factory=dict)


def sweep(
    train_one: Callable[[str, dict[str, Any], int, Path], dict[str, Any]],
    recipes: dict[str, dict[str, Any]],
    budget: int,
    out: str | Path,
    *,
    test_one: Callable[[Path], dict[str, float]] | None = None,
    eta: int = 2,
    metric: str = "ndcg@10",
    log: Callable[[str], None] = print,
    shared: dict[str, Any] | None = None,
    run: dict[str, Any] | None = None,
) -> SweepResult:
    """Run the halving. ``train_one(name, options, steps, folder)`` trains a recipe in ``folder`` and
    returns ``{"dev": {metric: value, ...}, "per_query": [values...]}``; ``test_one(folder)`` scores
    the winner's model on test. ``shared``: the options every recipe trains with, and ``run``: the
    data they train on; both go into ``best.toml`` with the winner's options, so that
    ``rankwise train --config best.toml`` trains the winner again. A finished training is reused
    only for the same recipe options and shared options; a folder made with others is refused."""
    out = Path(out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    shared = dict(shared or {})
    plan = schedule(len(recipes), budget, eta)
    log("sweep: " + " -> ".join(f"{n} recipe(s) x {s} steps" for n, s in plan) + f" (budget {budget} steps)")
    alive = list(recipes)
    result = SweepResult()
    for r, (count, steps) in enumerate(plan):
        rows = []
        for name in alive[:count]:
            folder = out / "runs" / f"{name}-{steps}"
            done = folder / "sweep_result.json"
            made_with = {"options": recipes[name], "shared": shared}
            if done.is_file():
                found = json.loads(done.read_text(encoding="utf-8"))
                _check_same(done, name, found.get("made_with"), json.loads(json.dumps(made_with, default=str)))
            else:
                found = train_one(name, recipes[name], steps, folder) | {"made_with": made_with}
                write_json(done, json.loads(json.dumps(found, default=str)))
            values = np.asarray(found.get("per_query") or [found["dev"][metric]], dtype=np.float64)
            lo, hi = _ci(values)
            rows.append({"recipe": name, "steps": steps, metric: found["dev"][metric], "ci": [lo, hi]})
            result.steps_used += steps
        rows.sort(key=lambda x: -x[metric])
        result.rounds.append(rows)
        log(f"round {r + 1}: " + ", ".join(f"{x['recipe']} {x[metric]:.4f}" for x in rows))
        keep = plan[r + 1][0] if r + 1 < len(plan) else 1
        alive = [x["recipe"] for x in rows][:keep]
    result.best = alive[0]
    result.best_options = recipes[result.best]
    final_steps = plan[-1][1]
    best = {"train": {**shared, **result.best_options, "steps": final_steps}}
    write_text(out / "best.toml", _toml(({"run": run} if run else {}) | best))
    if test_one is not None:
        result.test = test_one(out / "runs" / f"{result.best}-{final_steps}")
    write_json(out / "sweep.json", result.__dict__)
    return result


def _check_same(done: Path, name: str, saved: dict[str, Any] | None, now: dict[str, Any]) -> None:
    if saved != now:
        raise ConfigError(
            f"{done}: recipe {name!r} was trained here with other options ({saved} then, {now} now); "
            "sweep into a new folder"
        )


def _ci(values: np.ndarray) -> tuple[float, float]:
    from rankwise.metrics.significance import bootstrap_ci

    return bootstrap_ci(values, resamples=2000) if len(values) > 1 else (float(values[0]), float(values[0]))


def _toml(doc: dict[str, Any]) -> str:
    import tomli_w

    return tomli_w.dumps(doc)

"""``rankwise sweep`` against the full grid at the same budget, on stdlib-code's dev split.

The grid trains each of the sweep's six default recipes (``rankwise.training.sweep.DEFAULT_RECIPES``)
for ``STEPS`` steps and keeps the best on dev: ``6 * STEPS`` optimizer steps. The sweep gets the
same budget: successive halving (eta 2) over the same six recipes, so the survivors train longer
than any grid run. The bar: the sweep's pick is at least as good on dev as the grid's best.
Shared options: batch 32, lr 1e-4, query/doc 32/128 tokens, seed 42. Each finished grid run and
the sweep's folder are cached on the code they ran on (``_cache.py``).

    python benchmarks/sweep.py [--steps 60]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: benchmarks is a package
from benchmarks._cache import RunCache  # noqa: E402
from benchmarks._machine import machine, write_result  # noqa: E402
from benchmarks.settings import REPO, RUNS, SEED, STDLIB_TRAIN  # noqa: E402
from rankwise.data.stdlib_code import ensure_built  # noqa: E402
from rankwise.jobs.sweep import recipe_trainer, run_sweep  # noqa: E402
from rankwise.training import TrainConfig  # noqa: E402
from rankwise.training.sweep import DEFAULT_RECIPES  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "sweep.json"
PEERS = ()  # libraries besides torch/transformers/sentence-transformers whose figures it reports
BASE = {**STDLIB_TRAIN, "seed": SEED}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def timed(make) -> dict:
    """``make()``'s result with the seconds it took."""
    t0 = time.perf_counter()
    return {**make(), "seconds": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=60, help="steps of each grid run; the sweep gets six times as many")
    args = ap.parse_args()
    data = ensure_built()
    base = TrainConfig(**BASE)
    cache = RunCache("sweep", keep=RUNS / "sweep")  # finished runs committed: a later session continues
    train_one, _ = recipe_trainer(data, base, log=log)
    grid = {}
    for name, options in DEFAULT_RECIPES.items():
        settings = {"grid": name, "options": options, "steps": args.steps, "base": BASE}
        found = cache.run(
            settings, lambda folder, n=name, o=options: timed(lambda: train_one(n, o, args.steps, folder / "run"))
        )
        grid[name] = {"dev_ndcg@10": found["dev"]["ndcg@10"], "seconds": found["seconds"]}
        log(f"grid {name}: dev nDCG@10 {grid[name]['dev_ndcg@10']:.4f}")
    budget = len(DEFAULT_RECIPES) * args.steps
    settings = {"sweep": list(DEFAULT_RECIPES.items()), "budget": budget, "base": BASE}
    found = cache.run(
        settings, lambda folder: timed(lambda: run_sweep(data, folder / "sweep", budget, base=base, log=log).__dict__)
    )
    best_dev = found["rounds"][-1][0]["ndcg@10"]
    grid_best = max(grid, key=lambda k: grid[k]["dev_ndcg@10"])
    write_result(
        OUT,
        {
            "machine": machine(),
            "settings": {"base": BASE, "grid_steps_each": args.steps, "recipes": DEFAULT_RECIPES, "eta": 2},
            "sweep_best": found["best"],
            "sweep_best_dev": best_dev,
            "sweep_steps": found["steps_used"],
            "sweep_rounds": found["rounds"],
            "sweep_test": found["test"],
            "sweep_seconds": found["seconds"],
            "grid_best": grid_best,
            "grid_best_dev": grid[grid_best]["dev_ndcg@10"],
            "grid_steps": budget,
            "grid": grid,
            "grid_seconds": sum(g["seconds"] for g in grid.values()),
            "sweep_at_least_grid": best_dev >= grid[grid_best]["dev_ndcg@10"],
        },
        PEERS,
    )
    log(f"sweep {found['best']} {best_dev:.4f} vs grid {grid_best} {grid[grid_best]['dev_ndcg@10']:.4f}")


if __name__ == "__main__":
    main()

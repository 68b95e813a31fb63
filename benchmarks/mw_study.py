"""The MW loss on its paper's terms against InfoNCE (../shared/reference/methods.md, section 1).

Sheikholeslami et al. (arXiv 2510.00137) claim that MW, a global pairwise logistic loss over the
batch's score matrix, raises AUC over InfoNCE. Protocol here, on stdlib-code (choices on dev,
figures on test), everything equal but the loss:

- model: the default all-MiniLM-L6-v2, 90 steps of batch 32, lr 1e-4, query/doc 32/128 tokens;
- negatives: ``in-batch``, and ``hard``: each query's BM25 top 1-30 (margin guard against false
  negatives), 5 a query (the paper's H = 5), in the batch matrix beside the in-batch ones;
- losses: InfoNCE (tau 0.05); MW global (the paper's scope) at the paper's tau 0.01 and at a tau
  chosen on dev, each with the two normalisations the paper leaves open: ``pairs`` (mean over
  positive-negative pairs, LibAUC's) and ``positives`` (the paper's formula: sum over negatives,
  mean over positives);
- tau chosen on dev: MW ``pairs`` with in-batch negatives, seed 0, tau in {0.01, 0.02, 0.05, 0.1},
  by dev pooled AUC (the quantity the paper optimises);
- seeds 0, 1, 2 for every arm;
- measured: test pooled AUC as the paper measures it (each query's positives and its top-500
  retrieved non-relevant documents, pooled over queries into one ROC), per-query AUC, nDCG@10,
  Recall@100.

Verdict per negatives setting and MW variant against InfoNCE: the seed-mean differences; a 95%
bootstrap interval over test queries of the pooled-AUC difference (queries resampled jointly for
both losses, the difference averaged over seeds); the paired randomization test over queries on
per-query AUC and on nDCG@10 (seed-averaged per-query values).

Each run is cached (settings + code, ``_cache.py``); ``--minutes`` stops starting new runs after
that long, so a session runs part of the study and the next one continues.

    python benchmarks/mw_study.py [--minutes 150]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: benchmarks is a package
from benchmarks._cache import RunCache  # noqa: E402
from benchmarks._machine import machine, write_result  # noqa: E402
from benchmarks._retrieval import common_queries, measure, pooled_auc_ci, seed_averaged  # noqa: E402
from benchmarks.settings import REPO, STDLIB_TRAIN  # noqa: E402
from rankwise.data import load_beir  # noqa: E402
from rankwise.data.stdlib_code import ensure_built  # noqa: E402
from rankwise.metrics.significance import randomization_test  # noqa: E402
from rankwise.models import BiEncoder  # noqa: E402
from rankwise.training import TrainConfig, train  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "mw_study.json"
PEERS = ()  # libraries besides torch/transformers/sentence-transformers whose figures it reports
BASE = {"steps": 90, **STDLIB_TRAIN}
NEGATIVES = {"in-batch": None, "hard": "bm25:window=1-30,k=5,code=true,margin=0.0"}
PAPER_TAU, TAU_GRID, INFONCE_TAU = 0.01, [0.01, 0.02, 0.05, 0.1], 0.05
SEEDS = [0, 1, 2]
AUC_DEPTH = 500
RESAMPLES = 200


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def loss_spec(loss: str, tau: float, normalize: str | None) -> str:
    return f"infonce:temperature={tau}" if loss == "infonce" else f"mw:temperature={tau},normalize={normalize}"


def one_run(cache: RunCache, arm: dict, seed: int, data: dict) -> dict | None:
    """Train and measure one arm at one seed (cached); None when ``data`` is None and it is not cached."""
    settings = {"study": "mw", "arm": arm, "seed": seed, "base": BASE, "auc_depth": AUC_DEPTH}
    found = cache.get(settings)
    if found is not None or data is None:
        return found
    cfg = TrainConfig(
        **BASE,
        loss=loss_spec(arm["loss"], arm["tau"], arm.get("normalize")),
        negatives=NEGATIVES[arm["negatives"]],
        seed=seed,
        checkpoint_every=30,
    )
    log(f"train {arm} seed {seed}: {cfg.loss}, negatives {cfg.negatives}")
    folder = cache.workdir(settings)
    model = BiEncoder.load(None)
    t0 = time.perf_counter()
    res = train(model, data["train"], cfg, folder / "run", resume=True, log=lambda _: None)
    seconds = time.perf_counter() - t0
    dev_m, _ = measure(model, data["dev"], AUC_DEPTH)
    test_m, test_q = measure(model, data["test"], AUC_DEPTH)
    found = {
        "train_seconds": seconds,
        "final_loss": res.history[-1].loss,
        "dev": dev_m,
        "test": test_m,
        "per_query": test_q,
    }
    cache.put(settings, found)
    log(f"  dev {dev_m}; test {test_m}")
    return found


def arms(tau_star: float | None) -> list[dict]:
    out = []
    for negatives in NEGATIVES:
        out.append({"loss": "infonce", "tau": INFONCE_TAU, "negatives": negatives})
        for tau in sorted({PAPER_TAU} | ({tau_star} if tau_star else set())):
            for normalize in ("positives", "pairs"):
                out.append({"loss": "mw", "tau": tau, "normalize": normalize, "negatives": negatives})
    return out


def compare(mw_runs: list[dict], inf_runs: list[dict]) -> dict:
    out = {}
    for m in ("pooled_auc", "per_query_auc", "ndcg@10", "recall@100", "map"):
        out[f"delta_{m}"] = float(np.mean([r["test"][m] for r in mw_runs]) - np.mean([r["test"][m] for r in inf_runs]))
    out["delta_pooled_auc_ci"] = pooled_auc_ci(mw_runs, inf_runs, resamples=RESAMPLES)
    for key in ("auc", "ndcg@10"):
        qids = common_queries(mw_runs + inf_runs, key)
        out[f"p_{key}"] = randomization_test(seed_averaged(mw_runs, key, qids), seed_averaged(inf_runs, key, qids))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=float("inf"), help="start no new run after this long")
    args = ap.parse_args()
    start = time.monotonic()
    root = ensure_built()
    data = {
        "train": load_beir(root, "train").own_split(),
        "dev": load_beir(root, "dev").own_split(),
        "test": load_beir(root, "test").own_split(),
    }
    cache = RunCache("mw_study")

    def allowed() -> dict | None:
        return data if (time.monotonic() - start) / 60 < args.minutes else None

    # 1. tau on dev: MW pairs, in-batch, seed 0
    grid = {}
    for tau in TAU_GRID:
        r = one_run(cache, {"loss": "mw", "tau": tau, "normalize": "pairs", "negatives": "in-batch"}, 0, allowed())
        if r is not None:
            grid[tau] = r["dev"]["pooled_auc"]
    tau_star = max(grid, key=grid.get) if len(grid) == len(TAU_GRID) else None
    # 2. every arm, seed by seed (seed 0 of all arms first)
    results: dict[str, list[dict]] = {}
    for seed in SEEDS:
        for arm in arms(tau_star):
            r = one_run(cache, arm, seed, allowed())
            if r is not None:
                results.setdefault(name_of(arm), []).append(r | {"seed": seed, "arm": arm})
    runs = [
        {
            "loss": r["arm"]["loss"],
            "temperature": r["arm"]["tau"],
            "normalization": r["arm"].get("normalize"),
            "negatives": r["arm"]["negatives"],
            "seed": r["seed"],
            "pooled_auc": r["test"]["pooled_auc"],
            "per_query_auc": r["test"]["per_query_auc"],
            "ndcg@10": r["test"]["ndcg@10"],
            "recall@100": r["test"]["recall@100"],
            "dev_pooled_auc": r["dev"]["pooled_auc"],
            "dev_ndcg@10": r["dev"]["ndcg@10"],
            "train_seconds": r["train_seconds"],
        }
        for rs in results.values()
        for r in rs
    ]
    verdict = {}
    for negatives in NEGATIVES:
        base = results.get(name_of({"loss": "infonce", "tau": INFONCE_TAU, "negatives": negatives}), [])
        for arm in arms(tau_star):
            mine = results.get(name_of(arm), [])
            if arm["loss"] == "mw" and arm["negatives"] == negatives and len(mine) == len(base) == len(SEEDS):
                verdict[name_of(arm)] = compare(mine, base)
    write_result(
        OUT,
        {
            "machine": machine(),
            "settings": {
                "base": BASE,
                "negatives": NEGATIVES,
                "paper_tau": PAPER_TAU,
                "tau_grid": TAU_GRID,
                "infonce_tau": INFONCE_TAU,
                "seeds": SEEDS,
                "auc_depth": AUC_DEPTH,
                "bootstrap_resamples": RESAMPLES,
            },
            "dev_tau_choice": {"dev_pooled_auc": {str(k): v for k, v in grid.items()}, "chosen": tau_star},
            "runs": runs,
            "verdict": verdict,
            "complete": len(runs) == len(SEEDS) * len(arms(tau_star)) and tau_star is not None,
        },
        PEERS,
    )
    log(f"{len(runs)} runs written to {OUT}; comparisons: {list(verdict)}")


def name_of(arm: dict) -> str:
    if arm["loss"] == "infonce":
        return f"infonce(tau={arm['tau']})/{arm['negatives']}"
    return f"mw(tau={arm['tau']},{arm['normalize']})/{arm['negatives']}"


if __name__ == "__main__":
    main()

"""The MW loss on its paper's terms against InfoNCE (../shared/reference/methods.md, section 1).

Sheikholeslami et al. (arXiv 2510.00137) claim that MW, a global pairwise logistic loss over the
batch's score matrix, raises AUC over InfoNCE. Protocol here, on stdlib-code (choices on dev,
figures on test), everything equal but the loss:

- model: the default all-MiniLM-L6-v2, 90 steps of batch 32, lr 1e-4, query/doc 32/128 tokens;
- negatives: ``in-batch``, and ``hard``: each query's BM25 top 1-30 (margin guard against false
  negatives), 5 a query (the paper's H = 5), in the batch matrix beside the in-batch ones;
- losses: InfoNCE at a tau chosen on dev; MW global (the paper's scope) at the paper's tau 0.01
  and at a tau chosen on dev, each with the two normalisations the paper leaves open: ``pairs``
  (mean over positive-negative pairs, LibAUC's) and ``positives`` (the paper's formula: sum over
  negatives, mean over positives); and MW ``pairs`` at tau 0.05 (better on test than 0.01 in an
  earlier comparison, so measured with seeds rather than left to a 0.0001 dev margin);
- taus chosen on dev, in-batch negatives, seed 0, by dev pooled AUC (the quantity the paper
  optimises), each loss with the same budget: MW ``pairs`` among {0.01, 0.02, 0.05, 0.1}, InfoNCE
  among {0.02, 0.05, 0.1};
- seeds 0, 1, 2 for every arm;
- measured: test pooled AUC as the paper measures it (each query's positives and its top-500
  retrieved non-relevant documents, pooled over queries into one ROC), per-query AUC, nDCG@10,
  Recall@100.

Verdict per negatives setting and MW variant against InfoNCE: the seed-mean differences; a 95%
bootstrap interval over test queries of the pooled-AUC difference (queries resampled jointly for
both losses, the difference averaged over seeds); on per-query AUC and on nDCG@10 the seed-aware
p (two-level bootstrap over queries and seeds, ``rankwise.metrics.significance``) and its Holm
correction over the whole table (``p_holm``), beside the paired randomization test over queries
on seed-averaged values that earlier versions reported.

Each run is cached (settings + code, ``_cache.py``) and kept in ``benchmarks/runs/mw_study/``;
``--minutes`` stops starting new runs after that long, so a session runs part of the study and a
later one on the same code continues. The results file is written only when every run is in.

    python benchmarks/mw_study.py [--minutes 150]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: benchmarks is a package
from benchmarks._cache import RunCache  # noqa: E402
from benchmarks._machine import machine, write_result  # noqa: E402
from benchmarks._retrieval import common_queries, measure, pooled_auc_ci, seed_averaged, shrink_pools  # noqa: E402
from benchmarks.settings import REPO, RUNS, STDLIB_TRAIN  # noqa: E402
from rankwise.data import load_beir  # noqa: E402
from rankwise.data.stdlib_code import ensure_built  # noqa: E402
from rankwise.metrics.significance import holm, randomization_test, two_level_bootstrap  # noqa: E402
from rankwise.models import BiEncoder  # noqa: E402
from rankwise.training import TrainConfig, train  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "mw_study.json"
PEERS = ()  # libraries besides torch/transformers/sentence-transformers whose figures it reports
BASE = {"steps": 90, **STDLIB_TRAIN}
NEGATIVES = {"in-batch": None, "hard": "bm25:window=1-30,k=5,code=true,margin=0.0"}
PAPER_TAU, TAU_GRID, EXTRA_MW_TAU = 0.01, [0.01, 0.02, 0.05, 0.1], 0.05
INFONCE_GRID = [0.02, 0.05, 0.1]
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


def arms(mw_tau: float | None, infonce_tau: float | None) -> list[dict]:
    """Every arm once both taus are chosen (None: not yet, so no arm needs them)."""
    out = []
    for negatives in NEGATIVES:
        if infonce_tau is not None:
            out.append({"loss": "infonce", "tau": infonce_tau, "negatives": negatives})
        for tau in sorted({PAPER_TAU} | ({mw_tau} if mw_tau else set())):
            for normalize in ("positives", "pairs"):
                out.append({"loss": "mw", "tau": tau, "normalize": normalize, "negatives": negatives})
        if EXTRA_MW_TAU not in {PAPER_TAU, mw_tau}:
            out.append({"loss": "mw", "tau": EXTRA_MW_TAU, "normalize": "pairs", "negatives": negatives})
    return out


def choose(cache: RunCache, loss: str, grid: list[float], data: Callable[[], dict | None]) -> tuple[dict, float | None]:
    """Dev pooled AUC of each tau (in-batch, seed 0) and the best, None until every run is in."""
    found = {}
    for tau in grid:
        arm = {"loss": loss, "tau": tau, "negatives": "in-batch"} | ({"normalize": "pairs"} if loss == "mw" else {})
        r = one_run(cache, arm, 0, data())
        if r is not None:
            found[tau] = r["dev"]["pooled_auc"]
    return found, (max(found, key=found.get) if len(found) == len(grid) else None)


def per_query_matrix(runs: list[dict], key: str, qids: list[str]) -> np.ndarray:
    """[seeds, queries] values of ``key``, runs in seed order."""
    return np.array([[r["per_query"][key][q] for q in qids] for r in sorted(runs, key=lambda r: r["seed"])])


def compare(mw_runs: list[dict], inf_runs: list[dict]) -> dict:
    out = {}
    for m in ("pooled_auc", "per_query_auc", "ndcg@10", "recall@100", "map"):
        out[f"delta_{m}"] = float(np.mean([r["test"][m] for r in mw_runs]) - np.mean([r["test"][m] for r in inf_runs]))
    out["delta_pooled_auc_ci"] = pooled_auc_ci(mw_runs, inf_runs, resamples=RESAMPLES)
    for key in ("auc", "ndcg@10"):
        qids = common_queries(mw_runs + inf_runs, key)
        out[f"p_{key}"] = randomization_test(seed_averaged(mw_runs, key, qids), seed_averaged(inf_runs, key, qids))
        diff, ci, p = two_level_bootstrap(per_query_matrix(mw_runs, key, qids), per_query_matrix(inf_runs, key, qids))
        out[f"seed_aware_{key}"] = {"diff": diff, "ci": list(ci), "p": p}
    return out


def holm_table(verdict: dict) -> None:
    """Holm over every seed-aware p of the table (both metrics, every comparison)."""
    cells = [(name, key) for name in verdict for key in ("auc", "ndcg@10")]
    adjusted = holm([verdict[name][f"seed_aware_{key}"]["p"] for name, key in cells])
    for (name, key), p in zip(cells, adjusted):
        verdict[name][f"seed_aware_{key}"]["p_holm"] = p


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
    cache = RunCache("mw_study", keep=RUNS / "mw_study", shrink=shrink_pools)  # kept: the study outlasts a session

    def allowed() -> dict | None:
        return data if (time.monotonic() - start) / 60 < args.minutes else None

    # 1. each loss's tau on dev (in-batch, seed 0, dev pooled AUC), the same budget a side
    grid, tau_star = choose(cache, "mw", TAU_GRID, allowed)
    infonce_grid, infonce_star = choose(cache, "infonce", INFONCE_GRID, allowed)
    # 2. every arm, seed by seed (seed 0 of all arms first)
    results: dict[str, list[dict]] = {}
    for seed in SEEDS:
        for arm in arms(tau_star, infonce_star):
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
        base = results.get(name_of({"loss": "infonce", "tau": infonce_star, "negatives": negatives}), [])
        for arm in arms(tau_star, infonce_star):
            mine = results.get(name_of(arm), [])
            if arm["loss"] == "mw" and arm["negatives"] == negatives and len(mine) == len(base) == len(SEEDS):
                verdict[name_of(arm)] = compare(mine, base)
    holm_table(verdict)
    if None in (tau_star, infonce_star) or len(runs) < len(SEEDS) * len(arms(tau_star, infonce_star)):
        log(f"{len(runs)} runs in, the study is not complete: {OUT} not written")  # the last complete one stays
        return
    write_result(
        OUT,
        {
            "machine": machine(),
            "settings": {
                "base": BASE,
                "negatives": NEGATIVES,
                "paper_tau": PAPER_TAU,
                "tau_grid": TAU_GRID,
                "infonce_tau_grid": INFONCE_GRID,
                "extra_mw_tau": EXTRA_MW_TAU,
                "seeds": SEEDS,
                "auc_depth": AUC_DEPTH,
                "bootstrap_resamples": RESAMPLES,
            },
            "dev_tau_choice": {"dev_pooled_auc": {str(k): v for k, v in grid.items()}, "chosen": tau_star},
            "dev_infonce_tau_choice": {
                "dev_pooled_auc": {str(k): v for k, v in infonce_grid.items()},
                "chosen": infonce_star,
            },
            "runs": runs,
            "verdict": verdict,
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

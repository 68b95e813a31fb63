"""Feature-based learning to rank: rankwise's scorers and losses against LightGBM's LambdaMART.

Data (../shared/data/letor, see its README):
- ``mq2008-fold1``: train on ``vali.txt`` (80% of its queries; the other 20%, seeded, validate),
  test on ``test.txt`` (fold 1's ``train.txt`` is not available); features already query-level
  normalised, min-max per query again here.
- ``lightgbm-rank``: train on ``rank.train`` (80% / 20% validation, seeded), test on ``rank.test``;
  z-scored features (global statistics of the training part).
- ``mq2008-cv5``: five-fold cross-validation over all 313 MQ2008 queries (``vali.txt`` and
  ``test.txt``), LETOR's rotation (``LetorData.folds``): fold i tests on part i, validates on part
  i + 1 and trains on the other three, so every query is tested once; a system's per-query test
  values come from the fold that tested the query. The "validation choice" is made in each fold on
  that fold's validation part alone.

rankwise: the MLP (128-64) and the self-attention scorer (d 32, 1 layer, 2 heads) with ListNet,
ListMLE, LambdaLoss (NDCG-Loss2++), NeuralNDCG and MW (per query), AdamW, batch 16 queries,
evaluated on validation every 25 steps, the best step kept; dropout and learning rate chosen on
validation from ``TUNE`` (2 x 2) for every seed, as LambdaMART's grid is (``--tune first-seed``: at
seed 0 only, the choice kept for the other seeds, the protocol of the first lightgbm-rank run). LambdaMART:
``lightgbm.LGBMRanker(objective="lambdarank")`` with early stopping on validation nDCG@10, its
num_leaves / learning_rate / min_child_samples chosen on validation in this run (2 x 2 x 2, for
every seed). Five seeds each. Test nDCG@5, nDCG@10 and MAP with trec_eval's conventions (linear gains) over the queries
with a relevant row, for every system alike; 95% bootstrap intervals over queries of the
seed-averaged per-query values, and the paired randomization test against LambdaMART.

    python benchmarks/ltr.py [--datasets mq2008-fold1,lightgbm-rank,mq2008-cv5] [--seeds 5]
                             [--tune every-seed] [--workers 2]
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import multiprocessing
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: benchmarks is a package
from benchmarks._cache import RunCache  # noqa: E402
from benchmarks._machine import machine, write_result  # noqa: E402
from benchmarks.settings import LETOR, REPO  # noqa: E402
from rankwise.data.letor import LetorData, Normalizer, read_letor  # noqa: E402
from rankwise.metrics.model import evaluate_lists  # noqa: E402
from rankwise.metrics.ranking import evaluate_per_query  # noqa: E402
from rankwise.metrics.significance import bootstrap_ci, randomization_test  # noqa: E402
from rankwise.models.feature_scorer import make_scorer  # noqa: E402
from rankwise.training import TrainConfig, train  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "ltr.json"
PEERS = ("lightgbm",)  # libraries besides torch/transformers/sentence-transformers whose figures it reports
METRICS = ["ndcg@5", "ndcg@10", "map"]
DATASETS = {
    "mq2008-fold1": ("mq2008-fold1/vali.txt", "mq2008-fold1/test.txt", "query"),
    "lightgbm-rank": ("lightgbm-rank/rank.train", "lightgbm-rank/rank.test", "global"),
}
CV = {"mq2008-cv5": (("mq2008-fold1/vali.txt", "mq2008-fold1/test.txt"), "query", 5)}
LOSSES = {
    "listnet": "listnet",
    "listmle": "listmle",
    "lambdaloss": "lambdaloss:ndcg2pp",
    "neuralndcg": "neuralndcg",
    "mw": "mw:per_query",
}
SCORERS = {"mlp": {}, "attention": {"d_model": 32, "layers": 1, "heads": 2}}
STEPS = {"mlp": 400, "attention": 200}
GRID = {"num_leaves": [15, 31], "learning_rate": [0.05, 0.1], "min_child_samples": [10, 30]}
TUNE = [{"dropout": d, "lr": lr} for d in (0.1, 0.3) for lr in (1e-3, 3e-3)]
DEFAULT_TUNE = TUNE[0]  # the settings the first runs used: their cache keys carry no tuning


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def load(name: str):
    train_file, test_file, norm_mode = DATASETS[name]
    full = read_letor(LETOR / train_file)
    test = read_letor(LETOR / test_file, n_features=full.n_features)
    train_part, valid = full.split(0.2, seed=0)
    norm = Normalizer(norm_mode).fit(train_part)
    return norm.transform(train_part), norm.transform(valid), norm.transform(test)


@functools.cache
def splits(name: str) -> list[tuple[int | None, tuple[LetorData, LetorData, LetorData]]]:
    """``[(fold, (train, valid, test))]``: one split (fold None) for a held-out set, k for a CV set."""
    if name not in CV:
        return [(None, load(name))]
    files, norm_mode, k = CV[name]
    first = read_letor(LETOR / files[0])
    full = LetorData.concat([first] + [read_letor(LETOR / f, n_features=first.n_features) for f in files[1:]])
    out = []
    for i, parts in enumerate(full.folds(k, seed=0)):
        norm = Normalizer(norm_mode).fit(parts[0])
        out.append((i, tuple(norm.transform(p) for p in parts)))
    return out


def per_query(data: LetorData, scores: np.ndarray) -> dict[str, dict[str, float]]:
    qrels = {q: d for q, d in data.qrels().items() if max(d.values()) > 0}
    return evaluate_per_query(qrels, data.run(scores), METRICS)


def run_rankwise(train_d, valid, test, scorer: str, loss: str, seed: int, tune: dict) -> dict:
    torch.manual_seed(seed)
    model = make_scorer(scorer, train_d.n_features, **SCORERS[scorer], dropout=tune["dropout"])
    best = {"ndcg@10": -1.0, "step": 0, "state": None}

    def evaluator(step: int) -> dict:
        m = evaluate_lists(model, valid).metrics
        if m["ndcg@10"] > best["ndcg@10"]:
            best.update(
                {"ndcg@10": m["ndcg@10"], "step": step, "state": {k: v.clone() for k, v in model.state_dict().items()}}
            )
        return m

    cfg = TrainConfig(
        loss=LOSSES[loss], steps=STEPS[scorer], batch_size=16, lr=tune["lr"], weight_decay=0.0, eval_every=25, seed=seed
    )
    t0 = time.perf_counter()
    train(model, train_d.examples(), cfg, evaluator=evaluator, log=lambda _: None)
    model.load_state_dict(best["state"])
    pq = per_query(test, model.predict(test.features, test.offsets))
    return {
        "best_step": best["step"],
        "valid_ndcg@10": best["ndcg@10"],
        "seconds": time.perf_counter() - t0,
        "per_query": pq,
    }


def run_lambdamart(train_d, valid, test, seed: int) -> dict:
    import lightgbm as lgb

    def fit(params: dict):
        model = lgb.LGBMRanker(
            objective="lambdarank",
            n_estimators=1000,
            random_state=seed,
            verbose=-1,
            subsample=0.8,
            subsample_freq=1,
            colsample_bytree=0.8,
            n_jobs=1,
            **params,
        )
        model.fit(
            train_d.features,
            train_d.labels,
            group=np.diff(train_d.offsets),
            eval_set=[(valid.features, valid.labels)],
            eval_group=[np.diff(valid.offsets)],
            eval_at=[10],
            callbacks=[lgb.early_stopping(50, verbose=False)],
        )
        return model

    # lightgbm 4.7 (installed here) deprecates eval_set for eval_X / eval_y, which older versions lack
    warnings.filterwarnings("ignore", message="The argument 'eval_set' is deprecated")
    t0 = time.perf_counter()
    scored = []
    for values in itertools.product(*GRID.values()):
        params = dict(zip(GRID, values))
        model = fit(params)
        v = np.mean(list(per_query(valid, model.predict(valid.features))["ndcg@10"].values()))
        scored.append((v, params, model))
    v, params, model = max(scored, key=lambda x: x[0])
    pq = per_query(test, model.predict(test.features))
    return {
        "params": params,
        "best_iteration": int(model.best_iteration_ or 0),
        "valid_ndcg@10": float(v),
        "seconds": time.perf_counter() - t0,
        "per_query": pq,
    }


def lambdamart_settings(name: str, fold: int | None, seed: int) -> dict:
    return {"dataset": name, "system": "lambdamart", "seed": seed, "grid": GRID} | _fold(fold)


def rankwise_settings(name: str, fold: int | None, scorer: str, loss: str, seed: int, tune: dict) -> dict:
    return (
        {
            "dataset": name,
            "system": scorer,
            "loss": LOSSES[loss],
            "seed": seed,
            "options": SCORERS[scorer],
            "steps": STEPS[scorer],
        }
        | ({} if tune == DEFAULT_TUNE else {"tune": tune})
        | _fold(fold)
    )


def _fold(fold: int | None) -> dict:
    return {} if fold is None else {"fold": fold, "folds_seed": 0}


def settings_of(item: tuple) -> dict:
    """The cache key of a run: ``("lambdamart", name, fold, seed)`` or ``("rankwise", name, fold,
    scorer, loss, seed, tune)``."""
    return lambdamart_settings(*item[1:]) if item[0] == "lambdamart" else rankwise_settings(*item[1:])


def compute(item: tuple) -> dict:
    """The cached result of one run (see ``settings_of``), running it first when it is not cached."""
    cache, settings = RunCache("ltr"), settings_of(item)
    found = cache.get(settings)
    if found is None:
        kind, name, fold, *rest = item
        data = dict(splits(name))[fold]
        found = run_lambdamart(*data, *rest) if kind == "lambdamart" else run_rankwise(*data, *rest)
        cache.put(settings, found)
    return found


def tuned_runs(name: str, fold: int | None, scorer: str, loss: str, seeds: list[int], every_seed: bool):
    """``(runs over seeds, chosen tuning per seed, [(seed-0 run, tuning) ...])``: every ``TUNE`` point
    at the first seed (``every_seed``: at every seed, as LambdaMART's grid), the best on validation
    kept (for the other seeds too, unless ``every_seed``); each run cached."""

    def best(seed: int) -> tuple[dict, dict, list]:
        tried = [(compute(("rankwise", name, fold, scorer, loss, seed, t)), t) for t in TUNE]
        return *max(tried, key=lambda x: x[0]["valid_ndcg@10"]), tried

    first, tune, tried = best(seeds[0])
    if not every_seed:
        rest = [compute(("rankwise", name, fold, scorer, loss, seed, tune)) for seed in seeds[1:]]
        return [first] + rest, [tune] * len(seeds), tried
    rest = [best(seed)[:2] for seed in seeds[1:]]
    return [first] + [r for r, _ in rest], [tune] + [t for _, t in rest], tried


def merge_folds(per_fold: list[list[dict]]) -> list[dict]:
    """Per seed, one run over every fold's test queries (each query is tested in one fold): per-query
    values joined, validation nDCG@10 averaged over folds, seconds summed."""
    merged = []
    for runs in zip(*per_fold):
        pq = {m: {q: v for r in runs for q, v in r["per_query"][m].items()} for m in METRICS}
        merged.append(
            {
                "per_query": pq,
                "valid_ndcg@10": float(np.mean([r["valid_ndcg@10"] for r in runs])),
                "seconds": float(sum(r["seconds"] for r in runs)),
            }
        )
    return merged


def summarise(runs: list[dict], base: list[dict] | None) -> dict:
    """Seed-averaged per-query values: mean, 95% bootstrap CI over queries, spread over seeds, p vs LambdaMART."""
    out: dict = {}
    for m in METRICS:
        qids = sorted(runs[0]["per_query"][m])
        avg = np.mean([[r["per_query"][m][q] for q in qids] for r in runs], axis=0)
        seeds = [float(np.mean(list(r["per_query"][m].values()))) for r in runs]
        out[m] = float(avg.mean())
        out[f"{m}_ci"] = list(bootstrap_ci(avg))
        out[f"{m}_seed_std"] = float(np.std(seeds))
        if base is not None:
            b = np.mean([[r["per_query"][m][q] for q in qids] for r in base], axis=0)
            out[f"{m}_p_vs_lambdamart"] = randomization_test(avg, b)
    out["valid_ndcg@10"] = float(np.mean([r["valid_ndcg@10"] for r in runs]))
    out["seconds_per_run"] = float(np.mean([r["seconds"] for r in runs]))
    return out


def precompute(names: list[str], scorers: list[str], seeds: list[int], every_seed: bool, workers: int) -> None:
    """Run every missing run of the grid in a pool of ``workers`` single-threaded processes, the
    default tuning first (so an interrupted run leaves whole no-grid results), then the grid."""
    items = [("lambdamart", n, f, seed) for n in names for f, _ in splits(n) for seed in seeds]
    for tune in [DEFAULT_TUNE] + [t for t in TUNE if t != DEFAULT_TUNE]:
        for n in names:
            for fold, _ in splits(n):
                for seed in seeds if every_seed else seeds[:1]:
                    items += [("rankwise", n, fold, sc, lo, seed, tune) for sc in scorers for lo in LOSSES]
    cache = RunCache("ltr")
    todo = [it for it in items if cache.get(settings_of(it)) is None]
    log(f"{len(items) - len(todo)} of {len(items)} runs cached; {len(todo)} to run on {workers} processes")
    with multiprocessing.get_context("spawn").Pool(workers, initializer=torch.set_num_threads, initargs=(1,)) as pool:
        for done, _ in enumerate(pool.imap_unordered(compute, todo, chunksize=1), 1):
            if done % 25 == 0 or done == len(todo):
                log(f"  {done}/{len(todo)} runs done")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default=",".join([*DATASETS, *CV]))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--scorers", default=",".join(SCORERS))
    ap.add_argument(
        "--tune", choices=["first-seed", "every-seed"], default="every-seed", help="where rankwise's grid runs"
    )
    ap.add_argument("--workers", type=int, default=1, help="processes running the grid (one thread each)")
    args = ap.parse_args()
    every_seed = args.tune == "every-seed"
    names, scorers = args.datasets.split(","), args.scorers.split(",")
    torch.set_num_threads(1)
    seeds = list(range(args.seeds))
    if args.workers > 1:
        precompute(names, scorers, seeds, every_seed, args.workers)
    # datasets not run now keep their last results (each entry names the machine and code it ran on)
    old = json.loads(OUT.read_text()) if OUT.is_file() else {}
    kept = {k: {"machine": old.get("machine")} | v for k, v in old.get("datasets", {}).items()}
    result: dict = {
        "machine": machine(),
        "settings": {"losses": LOSSES, "scorers": SCORERS, "steps": STEPS, "grid": GRID, "tune": TUNE, "cv": CV},
    }
    result["datasets"] = {k: v for k, v in kept.items() if k not in names}
    for name in names:
        folds = splits(name)
        tr, va, te = folds[0][1]
        log(f"{name}: {len(folds)} fold(s), {tr.n_queries} train / {va.n_queries} valid / {te.n_queries} test queries")
        lm_folds = [[compute(("lambdamart", name, f, seed)) for seed in seeds] for f, _ in folds]
        lm_runs = merge_folds(lm_folds)
        entry = {
            "machine": result["machine"],
            "folds": len(folds) if name in CV else None,
            "lambdamart": summarise(lm_runs, None) | {"params": [r["params"] for runs in lm_folds for r in runs]},
            "rankwise": {},
        }
        log(f"  lambdamart: nDCG@10 {entry['lambdamart']['ndcg@10']:.4f}")
        per_fold: dict[str, list[list[dict]]] = {}  # system -> fold -> runs over seeds
        for scorer in scorers:
            for loss in LOSSES:
                system = f"{scorer}+{loss}"
                chosen = [tuned_runs(name, f, scorer, loss, seeds, every_seed) for f, _ in folds]
                per_fold[system] = [runs for runs, _, _ in chosen]
                row = summarise(merge_folds(per_fold[system]), lm_runs) | {"tuned_at": args.tune}
                row["tune"] = [t for _, tune, _ in chosen for t in tune]
                row["tune_valid_ndcg@10"] = [
                    {"tune": t, "valid_ndcg@10": r["valid_ndcg@10"]} for _, _, tried in chosen for r, t in tried
                ]
                entry["rankwise"][system] = row
                log(f"  {system}: nDCG@10 {row['ndcg@10']:.4f}")
                result["datasets"][name] = entry
                write_result(OUT, result, PEERS)
        best = max(entry["rankwise"], key=lambda k: entry["rankwise"][k]["valid_ndcg@10"])
        entry["best_on_valid"] = best
        entry["best_on_valid_minus_lambdamart"] = entry["rankwise"][best]["ndcg@10"] - entry["lambdamart"]["ndcg@10"]
        if len(folds) > 1:
            # each fold's own validation part picks that fold's system: no query's score picks the
            # model that is tested on it
            picks = [
                max(per_fold, key=lambda k: np.mean([r["valid_ndcg@10"] for r in per_fold[k][i]]))
                for i in range(len(folds))
            ]
            runs = merge_folds([per_fold[k][i] for i, k in enumerate(picks)])
            entry["valid_choice_per_fold"] = summarise(runs, lm_runs) | {"systems": picks}
            diff = entry["valid_choice_per_fold"]["ndcg@10"] - entry["lambdamart"]["ndcg@10"]
            entry["valid_choice_per_fold_minus_lambdamart"] = diff
            log(f"  validation choice per fold {picks}: {diff:+.4f} vs LambdaMART")
        result["datasets"][name] = entry
        write_result(OUT, result, PEERS)


if __name__ == "__main__":
    main()

"""Feature-based learning to rank: rankwise's scorers and losses against LightGBM's LambdaMART.

Data (../shared/data/letor, see its README):
- ``mq2008-fold1``: train on ``vali.txt`` (80% of its queries; the other 20%, seeded, validate),
  test on ``test.txt`` (fold 1's ``train.txt`` is not available); features already query-level
  normalised, min-max per query again here.
- ``lightgbm-rank``: train on ``rank.train`` (80% / 20% validation, seeded), test on ``rank.test``;
  z-scored features (global statistics of the training part).
- ``mq2008-cv5``: five-fold cross-validation over the 313 queries of MQ2008 fold 1's ``vali.txt``
  and ``test.txt`` (MQ2008 has 784; fold 1's ``train.txt`` is not in ../shared/data), LETOR's
  rotation (``LetorData.folds``): fold i tests on part i, validates on part i + 1 and trains on
  the other three, so every query is tested once; a system's per-query test
  values come from the fold that tested the query. The "validation choice" is made in each fold on
  that fold's validation part alone.

rankwise: the MLP (128-64) and the self-attention scorer (d 32, 1 layer, 2 heads) with ListNet,
ListMLE, LambdaLoss (NDCG-Loss2++), NeuralNDCG and MW (per query), AdamW, batch 16 queries,
evaluated on validation every 25 steps, the best step kept; dropout and learning rate chosen on
validation for every seed. LambdaMART: ``lightgbm.LGBMRanker(objective="lambdarank")`` with early
stopping on validation nDCG@10, its num_leaves / learning_rate / min_child_samples chosen on
validation for every seed. Both sides' choices widen a starting grid (``RW_START``, ``LM_START``)
along their ladders until no tried neighbour of the chosen point is better
(``benchmarks._tuning.widen``), so no choice sits on the edge of what was tried (only at a ladder's
end, which the results count). LambdaMART's gains are linear (``label_gain`` 0, 1, 2, ...) in its
objective and early stopping alike, as trec_eval's nDCG that scores every system. Five seeds each.
Test nDCG@5, nDCG@10 and MAP with trec_eval's conventions over the queries with a relevant row;
95% bootstrap intervals over queries of the seed-averaged per-query values; p against LambdaMART
from the two-level bootstrap over queries and seeds together, Holm-adjusted within each dataset's
table (``..._p_holm``).

    python benchmarks/ltr.py [--datasets mq2008-fold1,lightgbm-rank,mq2008-cv5] [--seeds 5] [--workers 2]
    python benchmarks/ltr.py --table   # the README tables from benchmarks/results/ltr.json
"""

from __future__ import annotations

import argparse
import functools
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
from benchmarks._tuning import Tuned, widen  # noqa: E402
from benchmarks.settings import LETOR, REPO  # noqa: E402
from rankwise.data.letor import LetorData, Normalizer, read_letor  # noqa: E402
from rankwise.metrics.model import evaluate_lists  # noqa: E402
from rankwise.metrics.ranking import evaluate_per_query  # noqa: E402
from rankwise.metrics.significance import bootstrap_ci, holm, two_level_bootstrap  # noqa: E402
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
LM_LADDERS = {
    "num_leaves": [3, 7, 15, 31, 63, 127, 255],
    "learning_rate": [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5],
    "min_child_samples": [1, 3, 10, 30, 100, 300],
}
LM_START = {"num_leaves": [15, 31], "learning_rate": [0.05, 0.1], "min_child_samples": [10, 30]}
# the 2026-12-06 run: 58 of its 210 choices at dropout 0.5 or lr 3e-4 / 3e-2, its ladders' ends
RW_LADDERS = {"dropout": [0.0, 0.1, 0.3, 0.5, 0.7, 0.85], "lr": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1]}
RW_START = {"dropout": [0.1, 0.3], "lr": [1e-3, 3e-3]}
LINEAR_GAINS = [float(g) for g in range(32)]  # LightGBM's label_gain (its default: 2^g - 1)


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
            label_gain=LINEAR_GAINS,  # objective and early stopping with trec_eval's gains
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
    models = {}

    def score(params: dict) -> float:
        models[json.dumps(params, sort_keys=True)] = model = fit(params)
        return float(np.mean(list(per_query(valid, model.predict(valid.features))["ndcg@10"].values())))

    tuned = widen(LM_LADDERS, LM_START, score)
    model = models[json.dumps(tuned.params, sort_keys=True)]
    return {
        "params": tuned.params,
        "tried": len(tuned.tried),
        "at_ladder_end": tuned.at_ladder_end,
        "best_iteration": int(model.best_iteration_ or 0),
        "valid_ndcg@10": tuned.score,
        "seconds": time.perf_counter() - t0,
        "per_query": per_query(test, model.predict(test.features)),
    }


def lambdamart_settings(name: str, fold: int | None, seed: int) -> dict:
    search = {"ladders": LM_LADDERS, "start": LM_START, "gains": "linear"}
    return {"dataset": name, "system": "lambdamart", "seed": seed, "search": search} | _fold(fold)


def rankwise_settings(name: str, fold: int | None, scorer: str, loss: str, seed: int, tune: dict) -> dict:
    return {
        "dataset": name,
        "system": scorer,
        "loss": LOSSES[loss],
        "seed": seed,
        "options": SCORERS[scorer],
        "steps": STEPS[scorer],
        "tune": tune,
    } | _fold(fold)


def _fold(fold: int | None) -> dict:
    return {} if fold is None else {"fold": fold, "folds_seed": 0}


def settings_of(item: tuple) -> dict:
    """The cache key of a run: ``("lambdamart", name, fold, seed)`` or ``("rankwise", name, fold,
    scorer, loss, seed, tune)``."""
    return lambdamart_settings(*item[1:]) if item[0] == "lambdamart" else rankwise_settings(*item[1:])


def compute(item: tuple) -> dict:
    """The cached result of one run (see ``settings_of``), running it first when it is not cached."""
    kind, name, fold, *rest = item

    def make(_) -> dict:
        data = dict(splits(name))[fold]
        return run_lambdamart(*data, *rest) if kind == "lambdamart" else run_rankwise(*data, *rest)

    return RunCache("ltr").run(settings_of(item), make)


def tuned_run(name: str, fold: int | None, scorer: str, loss: str, seed: int) -> tuple[dict, Tuned]:
    """The run of the tuning ``widen`` chooses on validation for this seed (each point cached)."""
    runs = {}

    def score(tune: dict) -> float:
        runs[json.dumps(tune, sort_keys=True)] = run = compute(("rankwise", name, fold, scorer, loss, seed, tune))
        return run["valid_ndcg@10"]

    tuned = widen(RW_LADDERS, RW_START, score)
    return runs[json.dumps(tuned.params, sort_keys=True)], tuned


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
    """Seed-averaged per-query values: mean, 95% bootstrap CI over queries, spread over seeds; p vs
    LambdaMART from the two-level bootstrap over queries and seeds."""
    out: dict = {}
    for m in METRICS:
        qids = sorted(runs[0]["per_query"][m])
        avg = np.mean([[r["per_query"][m][q] for q in qids] for r in runs], axis=0)
        seeds = [float(np.mean(list(r["per_query"][m].values()))) for r in runs]
        out[m] = float(avg.mean())
        out[f"{m}_ci"] = list(bootstrap_ci(avg))
        out[f"{m}_seed_std"] = float(np.std(seeds))
        if base is not None:
            a = np.array([[r["per_query"][m][q] for q in qids] for r in runs])
            b = np.array([[r["per_query"][m][q] for q in qids] for r in base])
            out[f"{m}_p_vs_lambdamart"] = two_level_bootstrap(a, b)[2]
    out["valid_ndcg@10"] = float(np.mean([r["valid_ndcg@10"] for r in runs]))
    out["seconds_per_run"] = float(np.mean([r["seconds"] for r in runs]))
    return out


def run_item(item: tuple) -> None:
    """A pool task: one LambdaMART search or one rankwise system's search for one seed."""
    if item[0] == "lambdamart":
        compute(item)
    else:
        tuned_run(*item[1:])


def precompute(names: list[str], scorers: list[str], seeds: list[int], workers: int) -> None:
    """Every search of the study in a pool of ``workers`` single-threaded processes (each point is
    cached, so an interrupted run continues where it stopped)."""
    folds = [(n, f) for n in names for f, _ in splits(n)]
    items = [("lambdamart", n, f, seed) for n, f in folds for seed in seeds]
    items += [("rankwise", n, f, sc, lo, seed) for seed in seeds for n, f in folds for sc in scorers for lo in LOSSES]
    log(f"{len(items)} searches on {workers} processes")
    with multiprocessing.get_context("spawn").Pool(workers, initializer=torch.set_num_threads, initargs=(1,)) as pool:
        for done, _ in enumerate(pool.imap_unordered(run_item, items, chunksize=1), 1):
            if done % 25 == 0 or done == len(items):
                log(f"  {done}/{len(items)} searches done")


def with_holm(entry: dict) -> None:
    """Each metric's p-values against LambdaMART, Holm-adjusted over the table's systems."""
    rows = list(entry["rankwise"].values()) + [entry[k] for k in ("valid_choice_per_fold",) if k in entry]
    for m in METRICS:
        for row, p in zip(rows, holm([r[f"{m}_p_vs_lambdamart"] for r in rows])):
            row[f"{m}_p_holm"] = p


def rankwise_row(name: str, scorer: str, loss: str, seeds: list[int], lm_runs: list[dict]) -> tuple[dict, list]:
    """One rankwise system's table row and its chosen runs per fold (over seeds)."""
    chosen = [[tuned_run(name, f, scorer, loss, seed) for seed in seeds] for f, _ in splits(name)]
    runs = [[run for run, _ in fold] for fold in chosen]
    row = summarise(merge_folds(runs), lm_runs)
    row["tune"] = [t.params for fold in chosen for _, t in fold]
    row["tune_tried"] = [len(t.tried) for fold in chosen for _, t in fold]
    row["tune_at_ladder_end"] = sum(bool(t.at_ladder_end) for fold in chosen for _, t in fold)
    row["tune_valid_ndcg@10"] = [
        [{"tune": p, "valid_ndcg@10": v} for p, v in t.tried] for fold in chosen for _, t in fold
    ]
    return row, runs


def table(name: str, scorers: list[str], seeds: list[int], machine_entry: dict) -> dict:
    """One dataset's entry: LambdaMART, every rankwise system, the validation choices, Holm."""
    folds = splits(name)
    tr, va, te = folds[0][1]
    log(f"{name}: {len(folds)} fold(s), {tr.n_queries} train / {va.n_queries} valid / {te.n_queries} test queries")
    lm_folds = [[compute(("lambdamart", name, f, seed)) for seed in seeds] for f, _ in folds]
    lm_runs = merge_folds(lm_folds)
    lm = summarise(lm_runs, None) | {"params": [r["params"] for runs in lm_folds for r in runs]}
    lm |= {"at_ladder_end": sum(bool(r["at_ladder_end"]) for runs in lm_folds for r in runs)}
    entry = {"machine": machine_entry, "folds": len(folds) if name in CV else None, "lambdamart": lm, "rankwise": {}}
    log(f"  lambdamart: nDCG@10 {lm['ndcg@10']:.4f}")
    per_fold: dict[str, list[list[dict]]] = {}  # system -> fold -> runs over seeds
    for scorer in scorers:
        for loss in LOSSES:
            system = f"{scorer}+{loss}"
            entry["rankwise"][system], per_fold[system] = rankwise_row(name, scorer, loss, seeds, lm_runs)
            log(f"  {system}: nDCG@10 {entry['rankwise'][system]['ndcg@10']:.4f}")
    best = max(entry["rankwise"], key=lambda k: entry["rankwise"][k]["valid_ndcg@10"])
    entry["best_on_valid"] = best
    entry["best_on_valid_minus_lambdamart"] = entry["rankwise"][best]["ndcg@10"] - lm["ndcg@10"]
    if len(folds) > 1:
        # each fold's own validation part picks that fold's system: no query's score picks the
        # model that is tested on it
        picks = [
            max(per_fold, key=lambda k: np.mean([r["valid_ndcg@10"] for r in per_fold[k][i]]))
            for i in range(len(folds))
        ]
        runs = merge_folds([per_fold[k][i] for i, k in enumerate(picks)])
        entry["valid_choice_per_fold"] = summarise(runs, lm_runs) | {"systems": picks}
        diff = entry["valid_choice_per_fold"]["ndcg@10"] - lm["ndcg@10"]
        entry["valid_choice_per_fold_minus_lambdamart"] = diff
        log(f"  validation choice per fold {picks}: {diff:+.4f} vs LambdaMART")
    with_holm(entry)
    return entry


def _choices(tunes: list[dict]) -> str:
    """The distinct dropout/lr points chosen over seeds (and folds), as "0.1/0.003, ..."."""
    return ", ".join(f"{d:g}/{lr:g}" for d, lr in sorted({(t["dropout"], t["lr"]) for t in tunes}))


def _row(label: str, r: dict, chosen: str, p: bool = True) -> str:
    lo, hi = r["ndcg@10_ci"]
    p_cell = f"{r['ndcg@10_p_vs_lambdamart']:.3g} / {r['ndcg@10_p_holm']:.3g}" if p else ""
    return (
        f"| {label} | {r['ndcg@5']:.4f} | {r['ndcg@10']:.4f} [{lo:.3f}, {hi:.3f}] | {r['map']:.4f} "
        f"| {r['valid_ndcg@10']:.4f} | {chosen} | {p_cell} |"
    )


def markdown(result: dict) -> str:
    """benchmarks/README's tables, one a dataset, from a results file."""
    out = []
    for name, e in result["datasets"].items():
        lm = e["lambdamart"]
        ends = f"{lm['at_ladder_end']} of {len(lm['params'])} choices at a ladder's end"
        out += [
            f"**{name}** (LambdaMART's choices over seeds{' and folds' if e['folds'] else ''}: {ends})",
            "",
            "| system | test nDCG@5 | test nDCG@10 [95% CI] | test MAP | valid nDCG@10 "
            "| dropout/lr chosen | p vs LambdaMART (nDCG@10; raw / Holm) |",
            "|---|---:|---:|---:|---:|---|---:|",
            _row("LambdaMART (lightgbm)", lm, "", p=False),
        ]
        if "valid_choice_per_fold" in e:
            choice = e["valid_choice_per_fold"]
            out.append(_row("**validation choice per fold**", choice, ", ".join(choice["systems"])))
        for system, r in e["rankwise"].items():
            label = system + (" (best on valid)" if system == e["best_on_valid"] else "")
            out.append(_row(label, r, _choices(r["tune"])))
        out.append("")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--table", action="store_true", help="print the README tables from the results file and stop")
    ap.add_argument("--datasets", default=",".join([*DATASETS, *CV]))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--scorers", default=",".join(SCORERS))
    ap.add_argument("--workers", type=int, default=1, help="processes running the searches (one thread each)")
    args = ap.parse_args()
    if args.table:
        print(markdown(json.loads(OUT.read_text())))
        return
    names, scorers = args.datasets.split(","), args.scorers.split(",")
    torch.set_num_threads(1)
    seeds = list(range(args.seeds))
    if args.workers > 1:
        precompute(names, scorers, seeds, args.workers)
    search = {
        "lambdamart": {"ladders": LM_LADDERS, "start": LM_START},
        "rankwise": {"ladders": RW_LADDERS, "start": RW_START},
    }
    result: dict = {
        "machine": machine(),
        "settings": {"losses": LOSSES, "scorers": SCORERS, "steps": STEPS, "search": search, "cv": CV},
        "datasets": {},
    }
    for name in names:  # every dataset of the file from this run's code: none kept from an earlier run
        result["datasets"][name] = table(name, scorers, seeds, result["machine"])
        write_result(OUT, result, PEERS)


if __name__ == "__main__":
    main()

"""rankwise's best recipe against sentence-transformers' at equal budget.

Peer: ``SentenceTransformerTrainer`` with ``MultipleNegativesRankingLoss`` (scale 20, i.e. InfoNCE
at tau 0.05) over ``mine_hard_negatives`` triplets (its default format: up to 5 mined negatives a
pair, one a row, the mining range and margin chosen on dev from ``PEER_GRID``), the no-duplicates
batch sampler. rankwise: the recipe chosen on dev from ``RECIPES`` (loss x negatives x batching x
false-negative control), one mined negative a query a step from a pool of 7. So both encode the
same 32 queries, 32 positives and 32 hard negatives a step (equal compute), and both draw each
query's negatives from a small mined pool over the epochs. Both start from the default
all-MiniLM-L6-v2, take the same optimizer steps of 32 queries, lr 1e-4 with 10% linear warm-up,
weight decay 0.01, gradient clipping 1.0, the same maximum lengths; three seeds each. Choices on
dev at seed 0; the dev curve of seed 0 (nDCG@10 every ``eval_every`` steps, the untrained model at
step 0) shows whether the peer had flattened by the last step.

Data: ``stdlib-code`` (its train/dev/test) and ``../shared/data/scifact`` (train less 100 held-out
dev queries, seed 0; test). Test nDCG@10, Recall@100, MAP and pooled AUC (each query's positives
and top-500 retrieved non-relevant documents), each with a 95% bootstrap interval over queries of
the seed-averaged per-query values (pooled AUC: the seed-mean over resampled queries); the paired
randomization test over queries on seed-averaged nDCG@10; the stdlib-code models zero-shot on
``../shared/data/trec-dl-5k``.

Each run is cached (settings + code, ``_cache.py``) and its record committed in
``benchmarks/runs/recipes_vs_peer/`` (sessions change machines); ``--minutes`` stops starting new
runs after that long so that sessions share the work.

    python benchmarks/recipes_vs_peer.py [--datasets stdlib-code,scifact] [--minutes 80]
    python benchmarks/recipes_vs_peer.py --table   # the README tables, from the results file
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: benchmarks is a package
from benchmarks._cache import RunCache  # noqa: E402
from benchmarks._machine import machine, write_result  # noqa: E402
from benchmarks._retrieval import METRICS, common_queries, measure, pooled_auc_ci, seed_averaged, shrink_pools  # noqa: E402
from benchmarks.settings import REPO, SHARED, STDLIB_TRAIN  # noqa: E402
from rankwise.data import examples_from_qrels, load_beir  # noqa: E402
from rankwise.data.stdlib_code import ensure_built  # noqa: E402
from rankwise.io import write_json  # noqa: E402
from rankwise.metrics.significance import bootstrap_ci, randomization_test  # noqa: E402
from rankwise.models import BiEncoder  # noqa: E402
from rankwise.models.bi_encoder import default_model_path  # noqa: E402
from rankwise.training import TrainConfig, train  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "recipes_vs_peer.json"
PEERS = ()  # libraries besides torch/transformers/sentence-transformers whose figures it reports
KEEP = REPO / "benchmarks" / "runs" / "recipes_vs_peer"  # finished runs, committed: sessions change machines
SEEDS = [0, 1, 2]
BATCH, LR = STDLIB_TRAIN["batch_size"], STDLIB_TRAIN["lr"]  # both datasets train at this batch and lr
DATASETS = {
    # at 300 steps the peer's dev curve still rose (0.7306 at 250, 0.7341 at 300): trained twice as long
    "stdlib-code": {"steps": 600, "eval_every": 50, "query_max_length": 32, "doc_max_length": 128},  # STDLIB_TRAIN's
    # a SciFact dev point encodes all 5,183 abstracts (3.3 min here): every 50 steps, beside step 0
    "scifact": {"steps": 150, "eval_every": 50, "query_max_length": 64, "doc_max_length": 256},
}
PEER_FORMAT = "triplet"  # one negative a row: the 32 x 3 texts a step that rankwise encodes too
PEER_GRID = {
    "top-30": {"range_min": 0, "range_max": 30, "relative_margin": None, "num_negatives": 5},
    "10-50,margin": {"range_min": 10, "range_max": 50, "relative_margin": 0.05, "num_negatives": 5},
}
RECIPES = {
    "bm25+ngame+fn": {
        "loss": "infonce:temperature=0.05",
        "negatives": "bm25:window=1-30,k=7,margin=0.0",
        "batching": "ngame:every=30,cluster_size=8",
        "false_negatives": "self:tau=0.05",
    },
    "dense+ngame+fn": {
        "loss": "infonce:temperature=0.05",
        "negatives": "dense:window=1-30,k=7,margin=0.0",
        "batching": "ngame:every=30,cluster_size=8",
        "false_negatives": "self:tau=0.05",
    },
    # ADORE-style: the current model re-mines its own negatives every 50 steps
    "dynamic+ngame+fn": {
        "loss": "infonce:temperature=0.05",
        "negatives": "dynamic:every=50,window=1-30,k=7,margin=0.0",
        "batching": "ngame:every=30,cluster_size=8",
        "false_negatives": "self:tau=0.05",
    },
}
TREC_LENGTH = 256
SAVE_EVERY = 50  # steps between the peer trainer's checkpoints
MEMO: dict = {}  # the latest model's corpus embeddings: dev and test share SciFact's corpus


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def splits(name: str) -> dict:
    if name == "stdlib-code":
        root = ensure_built()
        train_ds, dev = load_beir(root, "train").own_split(), load_beir(root, "dev").own_split()
        test = load_beir(root, "test").own_split()
    else:
        train_ds, dev = load_beir(SHARED / name, "train").hold_out(100, seed=0)
        test = load_beir(SHARED / name, "test")
    return {"train": train_ds, "dev": dev, "test": test}


def dev_ndcg(model: BiEncoder, dev) -> float:
    return measure(model, dev, 100, memo=MEMO)[0]["ndcg@10"]


def train_rankwise(data: dict, settings: dict, folder: Path, curve: bool) -> tuple[BiEncoder, list]:
    opts = DATASETS[settings["dataset"]]
    recipe = dict(RECIPES[settings["recipe"]])
    if settings["dataset"] == "stdlib-code" and recipe["negatives"].startswith("bm25"):
        recipe["negatives"] += ",code=true"  # BM25 splits code identifiers (as the negatives comparison chose)
    if recipe["negatives"].startswith(("dense", "dynamic")):
        recipe["negatives"] += f",max_length={opts['doc_max_length']}"  # mine with the lengths it trains on
    cfg = TrainConfig(
        **recipe,
        steps=opts["steps"],
        batch_size=BATCH,
        lr=LR,
        query_max_length=opts["query_max_length"],
        doc_max_length=opts["doc_max_length"],
        seed=settings["seed"],
        eval_every=opts["eval_every"] if curve else 0,
        checkpoint_every=50,
    )
    # measured at the lengths it trains on, as the peer's model (the packaged default is 256/256)
    model = BiEncoder.load(None, query_max_length=opts["query_max_length"], doc_max_length=opts["doc_max_length"])

    def evaluator(step: int) -> dict:
        return {"ndcg@10": dev_ndcg(model, data["dev"])}

    result = train(
        model, data["train"], cfg, folder / "run", resume=True, evaluator=evaluator if curve else None, log=log
    )
    # the checkpoints keep the evaluations, so a resumed run's curve is whole
    return model, [{"step": e["step"], "dev_ndcg@10": e["metrics"]["ndcg@10"]} for e in result.evals]


def train_peer(data: dict, settings: dict, folder: Path, curve: bool) -> tuple[BiEncoder, list]:
    """sentence-transformers' own recipe, through its own trainer."""
    from datasets import Dataset as HFDataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
        losses,
    )
    from sentence_transformers.training_args import BatchSamplers
    from sentence_transformers.util import mine_hard_negatives
    from transformers import TrainerCallback
    from transformers.trainer_utils import get_last_checkpoint

    opts, seed = DATASETS[settings["dataset"]], settings["seed"]
    steps, lr = settings.get("steps", opts["steps"]), settings.get("lr", LR)  # another study's grid may set them
    mining = dict(settings.get("mining") or PEER_GRID[settings["peer"]])
    sampling = mining.pop("sampling_strategy", "top")
    train_ds = data["train"]
    st = SentenceTransformer(str(default_model_path()))
    st.max_seq_length = opts["doc_max_length"]
    # the same (query, positive) pairs rankwise trains on
    pairs_of = [(ex.query, text) for ex in examples_from_qrels(train_ds) for _, text in ex.positives]
    anchors, positives = [q for q, _ in pairs_of], [d for _, d in pairs_of]
    pairs = HFDataset.from_dict({"anchor": anchors, "positive": positives})
    mined = mine_hard_negatives(
        pairs,
        st,
        corpus=[doc.full_text for doc in train_ds.corpus.values()],
        sampling_strategy=sampling,
        output_format=PEER_FORMAT,
        batch_size=64,
        verbose=False,
        **mining,
    )
    log(f"  peer: {len(mined)} triplets from {len(pairs)} pairs")
    args = SentenceTransformerTrainingArguments(
        output_dir=str(folder / "st"),
        max_steps=steps,
        per_device_train_batch_size=BATCH,
        learning_rate=lr,
        warmup_steps=math.ceil(0.1 * steps),  # rankwise's count; transformers 5 deprecates warmup_ratio
        weight_decay=0.01,
        max_grad_norm=1.0,
        seed=seed,
        data_seed=seed,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        # a checkpoint every 50 steps (optimizer, schedule, RNG, sampler position), so that a run cut
        # off by the end of a session resumes where it was, as rankwise's runs do
        save_strategy="steps",
        save_steps=SAVE_EVERY,
        save_total_limit=1,
        logging_steps=25,
        report_to="none",
    )
    curve_file = folder / "curve.json"  # kept beside the checkpoints, so a resumed run's curve is whole
    points: list = json.loads(curve_file.read_text()) if curve_file.is_file() else []

    class Curve(TrainerCallback):
        """Dev nDCG@10 every ``eval_every`` steps, measured as every other model here (saved, loaded)."""

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
            if curve and state.global_step % opts["eval_every"] == 0:
                st.save(str(folder / "curve-model"))
                score = dev_ndcg(load(folder / "curve-model", opts), data["dev"])
                points[:] = [p for p in points if p["step"] < state.global_step]
                points.append({"step": state.global_step, "dev_ndcg@10": score})
                write_json(curve_file, points)

    loss = losses.MultipleNegativesRankingLoss(st, scale=20.0)
    trainer = SentenceTransformerTrainer(model=st, args=args, train_dataset=mined, loss=loss, callbacks=[Curve()])
    last = get_last_checkpoint(str(folder / "st")) if (folder / "st").is_dir() else None
    if last is not None:
        log(f"  peer: resuming from {last}")
    trainer.train(resume_from_checkpoint=last)
    st.save(str(folder / "model"))
    return load(folder / "model", opts), points


def load(path: Path, opts: dict) -> BiEncoder:
    return BiEncoder.load(str(path), query_max_length=opts["query_max_length"], doc_max_length=opts["doc_max_length"])


def shrink_any(result: dict) -> dict:
    return shrink_pools(result) if "per_query" in result else result  # base_dev's and dev-only records as they are


def complete(found: dict | None) -> bool:
    """Whether a record can enter the test comparison: a dev-only record (a dev choice whose run's
    other figures were lost, see ``benchmarks/runs/recipes_vs_peer/README.md``) serves the choice only."""
    return found is not None and "per_query" in found


def one_run(cache: RunCache, settings: dict, data: dict, trec) -> dict:
    """Train (peer or rankwise) and measure on dev and test (and trec-dl-5k); cached."""
    log(f"train {settings}")
    folder = cache.workdir(settings)
    curve = settings["seed"] == SEEDS[0]
    t0 = time.perf_counter()
    fit = train_peer if "peer" in settings else train_rankwise
    model, points = fit(data, settings, folder, curve)
    seconds = time.perf_counter() - t0
    dev_m, _ = measure(model, data["dev"], memo=MEMO)
    test_m, test_q = measure(model, data["test"], memo=MEMO)
    found = {"train_seconds": seconds, "dev": dev_m, "test": test_m, "per_query": test_q, "curve": points}
    found["machine"] = machine()  # the study's runs come from several sessions' machines
    if trec is not None:
        model.config.query_max_length = model.config.doc_max_length = TREC_LENGTH
        trec_m, trec_q = measure(model, trec, 100)
        found["trec-dl-5k"] = {"metrics": trec_m, "per_query": {"ndcg@10": trec_q["ndcg@10"]}}
    cache.put(settings, found)
    log(f"  {seconds / 60:.1f} min; dev nDCG@10 {dev_m['ndcg@10']:.4f}, test nDCG@10 {test_m['ndcg@10']:.4f}")
    return found


def base_dev(cache: RunCache, name: str, data: dict, deadline: float) -> float | None:
    """The untrained model's dev nDCG@10 at the training lengths: step 0 of every dev curve."""
    opts = DATASETS[name]
    settings = {"dataset": name, "base_dev": "ndcg@10", "options": opts}
    found = cache.get(settings)
    if found is None and time.monotonic() < deadline:
        model = BiEncoder.load(None, query_max_length=opts["query_max_length"], doc_max_length=opts["doc_max_length"])
        found = {"ndcg@10": dev_ndcg(model, data["dev"])}
        cache.put(settings, found)
    return None if found is None else found["ndcg@10"]


def summary(runs: list[dict]) -> dict:
    out: dict = {"seeds": len(runs)}
    for m in METRICS:
        qids = common_queries(runs, m)
        per_q = seed_averaged(runs, m, qids)
        out[m] = float(np.mean(per_q))
        out[f"{m}_ci"] = list(bootstrap_ci(per_q))
        out[f"{m}_seed_std"] = float(np.std([r["test"][m] for r in runs]))
    out["pooled_auc"] = float(np.mean([r["test"]["pooled_auc"] for r in runs]))
    out["pooled_auc_ci"] = pooled_auc_ci(runs)
    out["dev_ndcg@10"] = float(np.mean([r["dev"]["ndcg@10"] for r in runs]))
    out["train_minutes"] = float(np.mean([r["train_seconds"] for r in runs]) / 60)
    out["dev_curve_seed0"] = runs[0]["curve"]
    return out


def by_train_positive(train_qrels: dict, test_qrels: dict) -> dict[str, list[str]]:
    """Judged test queries split by whether one of their positives is also a training query's
    positive ("seen": a model can learn that document's place in training) or not ("unseen")."""
    taught = {d for docs in train_qrels.values() for d, g in docs.items() if g > 0}
    groups: dict[str, list[str]] = {"seen": [], "unseen": []}
    for q, docs in sorted(test_qrels.items()):
        positives = {d for d, g in docs.items() if g > 0}
        if positives:
            groups["seen" if positives & taught else "unseen"].append(q)
    return groups


def breakdown(groups: dict[str, list[str]], peer: list[dict], ours: list[dict]) -> dict:
    """Seed-averaged test nDCG@10 of both sides on each group of queries, with the paired test;
    empty where either group is empty (a split with no shared positives has nothing to break down)."""
    if not all(groups.values()):
        return {}
    measured = set(common_queries(peer + ours, "ndcg@10"))
    out = {}
    for group, qids in groups.items():
        q = [x for x in qids if x in measured]
        a, b = seed_averaged(ours, "ndcg@10", q), seed_averaged(peer, "ndcg@10", q)
        out[group] = {
            "queries": len(q),
            "peer": float(np.mean(b)),
            "rankwise": float(np.mean(a)),
            "p_value": randomization_test(a, b),
        }
    return out


def run_settings(name: str, settings: dict) -> dict:
    """A run's whole settings (its cache key) on dataset ``name``, from ``{"recipe" or "peer", "seed"}``."""
    # the key holds what the run does, not just the names: an edited recipe is a new run
    spec = PEER_GRID[settings["peer"]] | {"format": PEER_FORMAT} if "peer" in settings else RECIPES[settings["recipe"]]
    key = {"dataset": name, "steps": DATASETS[name]["steps"], "options": DATASETS[name], "batch": BATCH, "lr": LR}
    return key | settings | {"spec": spec}


def compare_on(name: str, cache: RunCache, trec, deadline: float) -> tuple[dict, dict | None]:
    """One dataset's entry (choices on dev, three seeds a side, the test comparison), and the
    zero-shot trec-dl-5k figures of its models (stdlib-code only)."""
    data = splits(name)
    zero_shot = trec if name == "stdlib-code" else None

    full = partial(run_settings, name)
    sides = {"rankwise": {k: {"recipe": k} for k in RECIPES}, "peer": {k: {"peer": k} for k in PEER_GRID}}

    def chosen(side: str) -> str | None:
        """The side's candidate best on dev at seed 0, once all of them are measured."""
        dev = {k: cache.get(full(s | {"seed": SEEDS[0]})) for k, s in sides[side].items()}
        if None in dev.values():
            return None
        return max(dev, key=lambda k: dev[k]["dev"]["ndcg@10"])

    def needed(side: str) -> list[dict]:
        """The side's runs still to do: its dev candidates, then its choice's seeds."""
        choice = chosen(side)
        if choice is None:
            runs = [full(s | {"seed": SEEDS[0]}) for s in sides[side].values()]
            return [s for s in runs if cache.get(s) is None]
        runs = [full(sides[side][choice] | {"seed": seed}) for seed in SEEDS]
        return [s for s in runs if not complete(cache.get(s))]

    entry: dict = {"steps": DATASETS[name]["steps"], "dev_base_ndcg@10": base_dev(cache, name, data, deadline)}
    # a run a session left half-done first (it resumes from its checkpoint), then rankwise's runs,
    # then the peer's; each side's seeds as soon as its dev choice is made
    while time.monotonic() < deadline:
        todo = sorted(needed("rankwise") + needed("peer"), key=lambda s: not cache.started(s))
        if not todo:
            break
        one_run(cache, todo[0], data, zero_shot)

    entry["dev_choices"] = {  # those finished so far
        side: {
            k: found["dev"]["ndcg@10"]
            for k, s in cands.items()
            if (found := cache.get(full(s | {"seed": SEEDS[0]}))) is not None
        }
        for side, cands in sides.items()
    }

    choice = {side: chosen(side) for side in sides}
    seeds = {  # each chosen candidate's record a seed, read once (None: not run yet)
        side: [cache.get(full(sides[side][c] | {"seed": s})) for s in SEEDS] if c else [] for side, c in choice.items()
    }

    def progress(side: str) -> str:
        if choice[side] is None:
            return f"{side}: {len(entry['dev_choices'][side])} of {len(sides[side])} dev candidates measured"
        return f"{side}: {choice[side]} chosen on dev, {sum(map(complete, seeds[side]))} of {len(SEEDS)} seeds run"

    peer_key, ours_key = choice["peer"], choice["rankwise"]
    peer, ours = seeds["peer"], seeds["rankwise"]
    if not (peer and ours and all(map(complete, peer + ours))):
        return entry | {"status": "; ".join(progress(side) for side in sides)}, None
    qids = common_queries(peer + ours, "ndcg@10")
    entry |= {
        "peer": summary(peer) | {"recipe": f"MNRL + mine_hard_negatives({peer_key})"},
        "rankwise": summary(ours) | {"recipe": ours_key, "spec": RECIPES[ours_key]},
        "p_value": randomization_test(seed_averaged(ours, "ndcg@10", qids), seed_averaged(peer, "ndcg@10", qids)),
    }
    entry["rankwise_minus_peer_ndcg@10"] = entry["rankwise"]["ndcg@10"] - entry["peer"]["ndcg@10"]
    # where the difference comes from: test queries whose positive training also taught, and the rest
    entry["by_train_positive"] = breakdown(by_train_positive(data["train"].qrels, data["test"].qrels), peer, ours)
    if zero_shot is None:
        return entry, None
    transfer = {}
    for side, runs in (("peer", peer), ("rankwise", ours)):
        values = [r["trec-dl-5k"]["metrics"]["ndcg@10"] for r in runs]
        transfer[side] = {"ndcg@10": float(np.mean(values)), "seed_std": float(np.std(values))}
    return entry, transfer


def _ci(side: dict, metric: str) -> str:
    lo, hi = side[f"{metric}_ci"]
    return f"{side[metric]:.4f} [{lo:.4f}, {hi:.4f}]"


def markdown(result: dict) -> str:
    """benchmarks/README.md's tables, from a results file: test figures with their 95% intervals,
    rankwise minus peer in points, the dev choices and seed 0's dev curves."""
    rows = [
        "| dataset | steps | side | recipe | test nDCG@10 [95% CI] | Recall@100 [95% CI] | MAP [95% CI] "
        "| pooled AUC [95% CI] | dev nDCG@10 |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    notes, curves = [], []
    for name, entry in result["datasets"].items():
        choices = "; ".join(
            f"{side}: " + (", ".join(f"{k} {v:.4f}" for k, v in found.items()) or "none finished")
            for side, found in entry.get("dev_choices", {}).items()
        )
        notes.append(f"- {name}: dev nDCG@10 of the candidates (seed 0): {choices}")
        if "p_value" not in entry:
            notes.append(f"- {name}: {entry.get('status', 'not run')}")
            continue
        for side in ("peer", "rankwise"):
            s = entry[side]
            auc_lo, auc_hi = s["pooled_auc_ci"]
            rows.append(
                f"| {name} | {entry['steps']} | {side} | {s['recipe']} | {_ci(s, 'ndcg@10')} | "
                f"{_ci(s, 'recall@100')} | {_ci(s, 'map')} | {s['pooled_auc']:.4f} [{auc_lo:.4f}, {auc_hi:.4f}] | "
                f"{s['dev_ndcg@10']:.4f} |"
            )
        diff = 100 * entry["rankwise_minus_peer_ndcg@10"]
        notes.append(f"- {name}: rankwise minus peer, test nDCG@10: {diff:+.2f} points (p {entry['p_value']:.4f})")
        if groups := entry.get("by_train_positive"):
            parts = [
                f"{group} ({g['queries']} queries) peer {g['peer']:.4f}, rankwise {g['rankwise']:.4f} "
                f"({100 * (g['rankwise'] - g['peer']):+.2f}, p {g['p_value']:.4f})"
                for group, g in groups.items()
            ]
            notes.append(
                f"- {name}: test nDCG@10 by whether a query's positive is also a training positive: " + "; ".join(parts)
            )
        for side in ("peer", "rankwise"):
            points = [(0, entry["dev_base_ndcg@10"])] + [
                (p["step"], p["dev_ndcg@10"]) for p in entry[side]["dev_curve_seed0"]
            ]
            curves.append(f"- {name}, {side}: " + ", ".join(f"{step} {v:.4f}" for step, v in points))
    transfer = result.get("trec-dl-5k") or {}
    if transfer:
        t = {side: f"{v['ndcg@10']:.4f} (seed std {v['seed_std']:.4f})" for side, v in transfer.items()}
        notes.append(
            f"- trec-dl-5k zero-shot nDCG@10 of the stdlib-code models: peer {t['peer']}, rankwise {t['rankwise']}"
        )
    table = rows + [""] if len(rows) > 2 else []  # no dataset finished: no table yet
    if curves:
        curves = ["", "Dev nDCG@10 by step (seed 0; step 0 is the untrained model):", "", *curves]
    return "\n".join(table + notes + curves)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--minutes", type=float, default=float("inf"), help="start no new run after this long")
    ap.add_argument("--table", action="store_true", help="print the README tables from the results file and stop")
    args = ap.parse_args()
    if args.table:
        print(markdown(json.loads(OUT.read_text())))
        return
    deadline = time.monotonic() + 60 * args.minutes
    cache = RunCache("recipes_vs_peer", keep=KEEP, shrink=shrink_any)
    trec = load_beir(SHARED / "trec-dl-5k", "test")
    # every entry from this run's code (its runs cached, so a dataset run before costs nothing): a
    # file never merges entries that other code made
    result: dict = {"machine": machine(), "seeds": SEEDS, "datasets": {}, "trec-dl-5k": {}}
    result["settings"] = {"datasets": DATASETS, "peer_grid": PEER_GRID, "recipes": RECIPES, "batch": BATCH, "lr": LR}
    for name in args.datasets.split(","):
        result["datasets"][name], transfer = compare_on(name, cache, trec, deadline)
        if transfer is not None:
            result["trec-dl-5k"] = transfer
        write_result(OUT, result, PEERS)
    log(f"written {OUT}")


if __name__ == "__main__":
    main()

"""Label-free adaptation: all-MiniLM-L6-v2 adapted to a corpus with pseudo-queries cropped from it,
against the same model zero-shot, on the test split (whose qrels are read to measure only).

For each dataset (SciFact, stdlib-code) and seed 0-2: Contriever's independent cropping (one
query of 4-16 words a document, ``rankwise.data.pseudo.crop_queries``), kept when the starting
model ranks its document in its top 10 (the consistency filter), then ``STEPS`` steps of 32
pseudo-queries with InfoNCE (tau 0.05) over in-batch negatives at lr 2e-5, queries 32 and documents
256 tokens (128 on stdlib-code). Nothing is tuned: the settings are fixed before any run (GPL's
and Contriever's usual small learning rate, the loss comparison's InfoNCE). Test nDCG@10 per query
of every run is stored; ``p_seed_aware`` is the two-level bootstrap over queries and seeds
(``rankwise.metrics.significance.two_level_bootstrap``) of adapted minus zero-shot.

    python benchmarks/adapt.py [--datasets scifact,stdlib-code] [--steps 300]
    python benchmarks/adapt.py --smoke   # 2 steps on 300 documents of stdlib-code; writes nothing
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
from benchmarks.settings import RESULTS, RUNS, SCIFACT  # noqa: E402
from rankwise.data import load_beir  # noqa: E402
from rankwise.data.pseudo import consistent, crop_queries  # noqa: E402
from rankwise.data.stdlib_code import ensure_built  # noqa: E402
from rankwise.index.retrieve import dense_run  # noqa: E402
from rankwise.metrics.ranking import evaluate_arrays  # noqa: E402
from rankwise.metrics.significance import two_level_bootstrap  # noqa: E402
from rankwise.models import BiEncoder  # noqa: E402
from rankwise.training import TrainConfig, train  # noqa: E402

OUT = RESULTS / "adapt.json"
PEERS = ()
SEEDS = [0, 1, 2]
STEPS = 300
RECIPE = {"loss": "infonce:temperature=0.05", "negatives": "inbatch", "batch_size": 32, "lr": 2e-5}
FILTER_K = 10
DOC_LENGTH = {"scifact": 256, "stdlib-code": 128}


def test_split(name: str, docs: int | None):
    ds = load_beir(ensure_built(), "test").own_split() if name == "stdlib-code" else load_beir(SCIFACT, "test")
    if docs:  # --smoke: the first documents and the queries judging them
        return ds.restrict_corpus(set(list(ds.corpus)[:docs]))
    return ds


def ndcg_per_query(model: BiEncoder, ds) -> dict[str, float]:
    qids, values = evaluate_arrays(ds.qrels, dense_run(model, ds, 100, show_progress=False), ["ndcg@10"])
    return {q: float(v) for q, v in zip(qids, values["ndcg@10"])}


def start_model(name: str) -> BiEncoder:
    return BiEncoder.load(None, query_max_length=32, doc_max_length=DOC_LENGTH[name])


def adapt_once(name: str, ds, seed: int, steps: int, folder: Path) -> dict:
    """One seed: pseudo-queries from the corpus alone, filtered, trained; test nDCG@10 per query."""
    model = start_model(name)
    made = crop_queries(ds.corpus, method="crop", seed=seed)
    kept = consistent(made, model, ds.corpus, FILTER_K)
    t0 = time.perf_counter()
    cfg = TrainConfig(**RECIPE, steps=steps, seed=seed, query_max_length=32, doc_max_length=DOC_LENGTH[name])
    train(model, kept, cfg, folder / "run", resume=True, log=lambda m: print(m, flush=True))
    return {
        "pseudo_queries": len(made),
        "kept": len(kept),
        "train_seconds": time.perf_counter() - t0,
        "per_query": ndcg_per_query(model, ds),
        "machine": machine(),
    }


def entry(name: str, cache: RunCache, steps: int, seeds: list[int], docs: int | None) -> dict:
    ds = test_split(name, docs)
    base = {"dataset": name, "steps": steps, "docs": docs, "recipe": RECIPE, "filter_k": FILTER_K}
    zero = cache.get(base | {"zero_shot": True})
    if zero is None:
        zero = {"per_query": ndcg_per_query(start_model(name), ds)}
        cache.put(base | {"zero_shot": True}, zero)
    runs = []
    for seed in seeds:
        found = cache.get(base | {"seed": seed})
        if found is None:
            print(f"adapt {name} seed {seed}", flush=True)
            found = adapt_once(name, ds, seed, steps, cache.workdir(base | {"seed": seed}))
            cache.put(base | {"seed": seed}, found)
        runs.append(found)
    qids = sorted(zero["per_query"])
    adapted = np.array([[r["per_query"][q] for q in qids] for r in runs])
    start = np.array([[zero["per_query"][q] for q in qids]])
    diff, ci, p = two_level_bootstrap(adapted, start)
    return {
        "zero_shot": {"ndcg@10": float(start.mean())},
        "adapted": {
            "ndcg@10": float(adapted.mean()),
            "seeds": adapted.mean(axis=1).tolist(),
            "kept": [r["kept"] for r in runs],
            "pseudo_queries": runs[0]["pseudo_queries"],
        },
        "diff": diff,
        "diff_ci": list(ci),
        "p_seed_aware": p,
        "queries": len(qids),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="scifact,stdlib-code")
    ap.add_argument("--steps", type=int, default=STEPS)
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    steps, seeds, docs = (2, SEEDS[:2], 300) if args.smoke else (args.steps, SEEDS, None)
    names = ["stdlib-code"] if args.smoke else args.datasets.split(",")
    cache = RunCache("adapt-smoke" if args.smoke else "adapt", keep=None if args.smoke else RUNS / "adapt")
    datasets = {name: entry(name, cache, steps, seeds, docs) for name in names}
    if args.smoke:
        print(datasets, flush=True)
        return
    settings = {"recipe": RECIPE, "steps": steps, "filter_k": FILTER_K, "doc_length": DOC_LENGTH, "method": "crop"}
    write_result(OUT, {"machine": machine(), "settings": settings, "seeds": seeds, "datasets": datasets}, PEERS)


if __name__ == "__main__":
    main()

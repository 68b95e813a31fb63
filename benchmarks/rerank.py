"""Retrieve-then-rerank and distillation on stdlib-code (test), zero-shot on ../shared/data/trec-dl-5k.

Systems:
- ``dual``: the default model fine-tuned with rankwise's best recipe of the negatives comparison
  (chosen on dev there): InfoNCE tau 0.05, BM25 negatives with the margin guard, NGAME batches,
  self-confidence false-negative weights; 90 steps of batch 32.
- ``dual+cross``: a cross-encoder trained here (the default backbone with a fresh head, lists of
  a positive, 3 negatives mined by ``dual``'s own top 30 and 4 in-batch ones, listwise softmax
  cross-entropy) reranks ``dual``'s top 100; its scores are interpolated with ``dual``'s at the
  weight chosen on dev (the raw cross-encoder's figures are kept beside).
- ``dual+prf``: the embedding second pass over ``dual``'s top 100 (k, mode and alpha chosen on dev).
- ``distilled``: ``dual``'s recipe and step count, with the cross-encoder as teacher: mined
  negatives carry its scores and the loss adds listwise KL to its distribution.
- ``ar2``: the AR2 alternating schedule (:func:`rankwise.training.recipes.ar2`) from ``dual``.

Each finished system is cached (settings + the code it ran on, see ``_cache.py``); a re-run
continues where the last one stopped. Results: benchmarks/results/rerank.json.

    python benchmarks/rerank.py [--systems dual,dual+cross,dual+prf,distilled,ar2]
    python benchmarks/rerank.py --cross-steps 500,1000 --ar2-queries all   # sized for a GPU (the H200 run)

``--cross-steps`` and ``--ar2-queries`` size the two most expensive parts; the defaults fit two CPU
cores in a few hours, and the values used are written into the results' ``settings``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: benchmarks is a package
from benchmarks._cache import RunCache  # noqa: E402
from benchmarks._machine import machine, write_result  # noqa: E402
from benchmarks.settings import REPO, SEED, STDLIB_TRAIN, TREC_DL  # noqa: E402
from rankwise.data import load_beir  # noqa: E402
from rankwise.data.stdlib_code import ensure_built  # noqa: E402
from rankwise.index.rerank import (  # noqa: E402
    CrossEncoderStage,
    DenseStage,
    Pipeline,
    PipelineResult,
    PRFStage,
    interpolate,
)
from rankwise.metrics.model import score_run  # noqa: E402
from rankwise.models import BiEncoder, CrossEncoder  # noqa: E402
from rankwise.training import TrainConfig, train  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "rerank.json"
PEERS = ()  # libraries besides torch/transformers/sentence-transformers whose figures it reports
SYSTEMS = ["dual", "dual+cross", "dual+prf", "distilled", "ar2"]
DEPTH = 100
BEST = {  # benchmarks/README.md, negatives comparison: best+fn, chosen on dev
    "loss": "infonce:temperature=0.05",
    "negatives": "bm25:window=1-30,k=7,code=true,margin=0.0",
    "batching": "ngame:every=30,cluster_size=8",
    "false_negatives": "self:tau=0.05",
    "steps": 90,
    **STDLIB_TRAIN,
    "seed": SEED,
}
CROSS = {  # sized for 2 CPU cores: ~100 query-document tokens a pair, ~7 s a step
    # A fresh head on a bi-encoder backbone learns nothing from hard negatives alone in a CPU budget
    # (loss stayed at ln 8 for 80 steps): each list mixes 3 of the dual encoder's hard negatives with
    # 4 in-batch ones, and the fresh head learns 30x faster than the backbone.
    "kind": "cross-encoder",
    "loss": "infonce:temperature=1.0",
    "list_size": 8,
    "negatives_per_query": 3,
    "batch_size": 16,
    "steps": 150,
    "lr": 1e-4,
    "head_lr_scale": 30.0,
    "pair_max_length": 128,
    "chunk_tokens": 4096,
    "seed": 42,
}
PRF_GRID = [{"mode": m, "k": k, "alpha": a} for m in ("text", "vector") for k in (1, 3) for a in (0.3, 0.6, 1.0)]
EVAL_LENGTH = 128
INTERPOLATE = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]  # weight of the dual encoder's z-scores, chosen on dev


def fused(res: PipelineResult, weight: float) -> PipelineResult:
    """The cross-encoder's raw run interpolated with the first stage's: the scores
    ``CrossEncoderStage(interpolate=weight)`` gives (tests/index/test_rerank.py), computed once per grid."""
    run = {q: interpolate(res.first[q], res.run[q], weight) if res.run[q] else {} for q in res.run}
    return PipelineResult(res.first, run, res.latency_ms)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def row(system: str, dataset, res, trec_res=None) -> dict:
    m = score_run(dataset, res.run, ["ndcg@10", "recall@100", "map", "mrr@10"]).metrics
    lat = res.latency_summary()
    out = {
        "system": system,
        "ndcg@10": m["ndcg@10"],
        "recall@100": m["recall@100"],
        "map": m["map"],
        "mrr@10": m["mrr@10"],
        "ms_per_query": lat["total_ms_mean"],
        "latency": lat,
    }
    if trec_res is not None:
        out["trec-dl-5k ndcg@10"] = score_run(trec_res[0], trec_res[1].run, ["ndcg@10"]).metrics["ndcg@10"]
    return out


def load_dual(path: Path, length: int = EVAL_LENGTH) -> BiEncoder:
    return BiEncoder.load(str(path), query_max_length=length, doc_max_length=length)


def trained_dual(cache: RunCache, name: str, cfg: dict, train_ds, extra: dict | None = None) -> Path:
    settings = {"system": name, "train": cfg} | (extra or {})
    if cache.get(settings) is not None and (cache.folder(settings) / "model").is_dir():
        return cache.folder(settings) / "model"
    folder = cache.workdir(settings)
    log(f"{name}: training {cfg}")
    model = BiEncoder.load(None)
    t0 = time.perf_counter()
    res = train(model, train_ds, TrainConfig(**cfg), folder / "run", resume=True, log=log)
    model.save(folder / "model")
    cache.put(settings, {"seconds": time.perf_counter() - t0, "final_loss": res.history[-1].loss})
    return folder / "model"


def trained_cross(cache: RunCache, dual_path: Path, train_ds, steps: int) -> Path:
    cfg = CROSS | {"steps": steps} | {"negatives": f"dense:window=1-30,k=7,max_length=128,model={dual_path}"}
    settings = {"system": "cross", "train": cfg}
    if cache.get(settings) is not None and (cache.folder(settings) / "model").is_dir():
        return cache.folder(settings) / "model"
    folder = cache.workdir(settings)
    log(f"cross-encoder: training {cfg}")
    model = CrossEncoder(None, max_length=CROSS["pair_max_length"], seed=CROSS["seed"])
    t0 = time.perf_counter()

    def every(s) -> None:
        if s.step % 20 == 0:
            log(f"  step {s.step}: loss {s.loss:.4f}, {s.examples_per_s:.2f} queries/s")

    res = train(model, train_ds, TrainConfig(**cfg), folder / "run", resume=True, on_step=every, log=log)
    model.save(folder / "model")
    cache.put(settings, {"seconds": time.perf_counter() - t0, "final_loss": res.history[-1].loss})
    return folder / "model"


def evaluated(cache: RunCache, settings: dict, compute) -> dict:
    found = cache.get(settings)
    if found is None:
        found = compute()
        cache.put(settings, found)
    return found


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    ap.add_argument(
        "--cross-steps",
        default=str(CROSS["steps"]),
        help="the cross-encoder's training steps; a comma list: dev chooses",
    )
    ap.add_argument("--ar2-queries", default="1000", help="training queries AR2 co-trains on ('all': every one)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    wanted = args.systems.split(",")
    ar2_queries = None if args.ar2_queries == "all" else int(args.ar2_queries)
    out_path: Path = args.out
    data = ensure_built()
    train_ds = load_beir(data, "train").own_split()
    dev, test = load_beir(data, "dev").own_split(), load_beir(data, "test").own_split()
    trec = load_beir(TREC_DL, "test")
    cache = RunCache("rerank")
    result = json.loads(out_path.read_text()) if out_path.is_file() else {}
    cross_steps = [int(x) for x in args.cross_steps.split(",")]
    cross = CROSS | {"steps": cross_steps}
    settings = {
        "best": BEST,
        "cross": cross,
        "depth": DEPTH,
        "eval_max_length": EVAL_LENGTH,
        "ar2_queries": ar2_queries,
    }
    if result.get("settings") not in (None, settings):
        result = {}  # another configuration's figures: start afresh rather than mix them
    result = {"settings": settings} | {
        "runs": result.get("runs", []),
        "choices": result.get("choices", {}),
    }

    def record(r: dict) -> None:
        result["runs"] = [x for x in result["runs"] if x["system"] != r["system"]] + [r]
        result["runs"].sort(key=lambda x: SYSTEMS.index(x["system"]) if x["system"] in SYSTEMS else 99)
        result["machine"] = machine()
        write_result(out_path, result, PEERS)
        log(
            f"{r['system']}: nDCG@10 {r['ndcg@10']:.4f}, Recall@100 {r['recall@100']:.4f}, {r['ms_per_query']:.1f} ms/q"
        )

    dual_path = trained_dual(cache, "dual", BEST, train_ds)

    def dense(path: Path, name: str):
        def compute() -> dict:
            model = load_dual(path)
            res = Pipeline(DenseStage(model), depth=DEPTH).run(test)
            trec_model = load_dual(path, 256)
            return row(name, test, res, (trec, Pipeline(DenseStage(trec_model), depth=DEPTH).run(trec)))

        return compute

    record(evaluated(cache, {"eval": "dual", "model": str(dual_path)}, dense(dual_path, "dual")))

    def reranked(cross_path: Path, ds, length: int) -> PipelineResult:
        ce = CrossEncoder.load(cross_path)
        ce.config.max_length = length
        return Pipeline(DenseStage(load_dual(dual_path, length)), CrossEncoderStage(ce), depth=DEPTH).run(ds)

    def choose(cross_path: Path) -> dict:
        res = reranked(cross_path, dev, CROSS["pair_max_length"])
        scored = [(score_run(dev, fused(res, w).run, ["ndcg@10"]).metrics["ndcg@10"], w) for w in INTERPOLATE]
        for v, w in scored:
            log(f"  interpolate {w}: dev nDCG@10 {v:.4f}")
        first = score_run(dev, res.first, ["ndcg@10"]).metrics["ndcg@10"]
        best = max(scored, key=lambda x: x[0])
        return {
            "dev": [{"interpolate": w, "ndcg@10": v} for v, w in scored],
            "dev_first": first,
            "best": best[1],
            "best_dev_ndcg@10": best[0],
        }

    if "dual+cross" in wanted or "distilled" in wanted or "ar2" in wanted:
        # One cross-encoder per step count; dev chooses the count (and the interpolation weight) for all
        # three systems built on it.
        choices = {}
        for steps in cross_steps:
            path = trained_cross(cache, dual_path, train_ds, steps)
            key = {
                "choose": "interpolate",
                "model": str(dual_path),
                "cross": str(path),
                "grid": INTERPOLATE,
                "v": 2,  # the format of choose()'s result
            }
            choices[steps] = (path, evaluated(cache, key, lambda path=path: choose(path)))
            log(f"cross-encoder, {steps} steps: best dev nDCG@10 {choices[steps][1]['best_dev_ndcg@10']:.4f}")
        best_steps = max(choices, key=lambda k: choices[k][1]["best_dev_ndcg@10"])
        cross_path, choice = choices[best_steps]
        result["choices"]["dual+cross"] = choice | {"cross_steps": best_steps}
        result["choices"]["cross_steps"] = {str(k): v[1]["best_dev_ndcg@10"] for k, v in choices.items()}

    if "dual+cross" in wanted:

        def compute() -> dict:
            res = reranked(cross_path, test, CROSS["pair_max_length"])
            trec_res = reranked(cross_path, trec, 256)
            raw = row("dual+cross", test, res, (trec, trec_res))
            w = choice["best"]
            out = row("dual+cross", test, fused(res, w), (trec, fused(trec_res, w))) | {"interpolate": w}
            return out | {"raw_cross_encoder": {k: raw[k] for k in ("ndcg@10", "recall@100", "trec-dl-5k ndcg@10")}}

        record(
            evaluated(
                cache,
                {
                    "eval": "dual+cross",
                    "model": str(dual_path),
                    "cross": str(cross_path),
                    "interpolate": choice["best"],
                },
                compute,
            )
        )

    if "dual+prf" in wanted:

        def choose() -> dict:
            model = load_dual(dual_path)
            first = DenseStage(model)
            scored = []
            for opts in PRF_GRID:
                res = Pipeline(first, PRFStage(model, **opts), depth=DEPTH).run(dev)
                scored.append((score_run(dev, res.run, ["ndcg@10"]).metrics["ndcg@10"], opts))
                log(f"  prf {opts}: dev nDCG@10 {scored[-1][0]:.4f}")
            plain = score_run(dev, Pipeline(first, depth=DEPTH).run(dev).run, ["ndcg@10"]).metrics["ndcg@10"]
            best = max(scored, key=lambda x: x[0])
            return {"dev": [{"options": o, "ndcg@10": v} for v, o in scored], "dev_plain": plain, "best": best[1]}

        choice = evaluated(cache, {"choose": "prf", "model": str(dual_path), "grid": PRF_GRID}, choose)
        result["choices"]["dual+prf"] = choice

        def compute() -> dict:
            model = load_dual(dual_path)
            res = Pipeline(DenseStage(model), PRFStage(model, **choice["best"]), depth=DEPTH).run(test)
            trec_model = load_dual(dual_path, 256)
            trec_res = Pipeline(DenseStage(trec_model), PRFStage(trec_model, **choice["best"]), depth=DEPTH).run(trec)
            return row("dual+prf", test, res, (trec, trec_res)) | {"options": choice["best"]}

        record(evaluated(cache, {"eval": "dual+prf", "model": str(dual_path), "prf": choice["best"]}, compute))

    if "distilled" in wanted:
        cfg = BEST | {
            "negatives": BEST["negatives"] + f",teacher={cross_path}",
            "loss": "infonce:temperature=0.05+kl:temperature=0.05",
        }
        path = trained_dual(cache, "distilled", cfg, train_ds)
        record(evaluated(cache, {"eval": "distilled", "model": str(path)}, dense(path, "distilled")))

    if "ar2" in wanted:
        from rankwise.training.recipes import AR2Schedule, ar2

        schedule = AR2Schedule(queries=ar2_queries)  # the ranker scores every candidate each round: 1,000 fit a CPU
        settings = {"system": "ar2", "schedule": schedule.__dict__, "dual": str(dual_path), "cross": str(cross_path)}
        folder = cache.folder(settings)
        if cache.get(settings) is None or not (folder / "retriever").is_dir():
            folder = cache.workdir(settings)
            log(f"ar2: {schedule}")
            t0 = time.perf_counter()
            ar2(dual_path, cross_path, train_ds, folder, schedule, log=log)
            cache.put(settings, {"seconds": time.perf_counter() - t0})
        record(
            evaluated(cache, {"eval": "ar2", "model": str(folder / "retriever")}, dense(folder / "retriever", "ar2"))
        )


if __name__ == "__main__":
    main()

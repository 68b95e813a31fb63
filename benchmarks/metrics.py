"""Score one synthetic run (10,000 queries x 1,000 documents) for nDCG@10, MRR@10, Recall@100
and MAP with rankwise, ranx and pytrec_eval in the same process, on the same dicts.

Every side starts from the same ``{qid: {docid: score}}`` dicts, so the timed work includes
each library's own conversion (ranx: ``Qrels``/``Run`` construction; rankwise: building its
arrays). ranx's time without the conversion is reported too. Numba compiles on the first call
of each library; that first call runs on a small problem beforehand and is reported separately,
both as it happens here (both libraries cache compiled code on disk, so after the first run on
a machine it is a cache load) and in a fresh process with an empty numba cache (the compile a
new install pays once). Timings are medians of interleaved repeats.

Agreement: per-query values against pytrec_eval (nDCG@10, Recall@100, MAP; trec_eval's
recip_rank has no cut-off, so MRR@10 is compared with ranx) and against ranx (all four).
Scores are distinct within a query and exact in float32: ranx breaks ties in its own order
(trec_eval by docid, which rankwise follows and tests), and trec_eval compares scores as
float32 while ranx uses float64, so ties or near-ties would make the peers disagree with each
other rather than test anyone's arithmetic.

Realistic runs beside it (``real``): BM25's top 1,000 (bm25s, float32 scores) on trec-dl-5k
(graded judgements, 50 queries) and on SciFact's test and train queries, with the ties a lexical
scorer makes. rankwise is compared with pytrec_eval on them (both break ties by document id, as
trec_eval does) and with ranx (which orders tied documents its own way), with the share of
queries whose top 100 holds a tie; timings are medians of the same interleaved repeats.

    python benchmarks/metrics.py [--quick] [--repeats 3]

Writes benchmarks/results/metrics.json (metrics-quick.json with --quick).
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: benchmarks is a package
from benchmarks._machine import machine, write_result  # noqa: E402
from rankwise.metrics import evaluate_per_query  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
PEERS = (
    "ranx",
    "pytrec-eval-terrier",
)  # libraries besides torch/transformers/sentence-transformers whose figures it reports
METRICS = ["ndcg@10", "mrr@10", "recall@100", "map"]
RANX = {"ndcg@10": "ndcg@10", "mrr@10": "mrr@10", "recall@100": "recall@100", "map": "map"}
TREC = {"ndcg@10": "ndcg_cut_10", "recall@100": "recall_100", "map": "map"}


def make_data(n_queries: int, n_docs: int, judged: int, seed: int = 0):
    """Random run with continuous scores; each query judges ``judged`` documents with grades
    0-3, a fifth of them not retrieved."""
    rng = np.random.default_rng(seed)
    run, qrels = {}, {}
    doc_names = np.array([f"doc{i}" for i in range(n_docs * 5)])
    for q in range(n_queries):
        docs = doc_names[rng.choice(len(doc_names), n_docs + judged, replace=False)]
        scores = rng.choice(2**20, n_docs, replace=False) / 2**20  # distinct, exact in float32
        run[f"q{q}"] = dict(zip(docs[:n_docs].tolist(), scores.tolist()))
        jd = np.concatenate(
            [docs[rng.choice(n_docs, judged - judged // 5, replace=False)], docs[n_docs : n_docs + judged // 5]]
        )
        qrels[f"q{q}"] = dict(zip(jd.tolist(), rng.integers(0, 4, len(jd)).tolist()))
    return qrels, run


def run_rankwise(qrels, run):
    return evaluate_per_query(qrels, run, METRICS)


def run_ranx(qrels, run):
    import ranx

    return ranx.evaluate(ranx.Qrels(qrels), ranx.Run(run), list(RANX.values()), return_mean=False)


def run_pytrec(qrels, run):
    import pytrec_eval

    return pytrec_eval.RelevanceEvaluator(qrels, set(TREC.values())).evaluate(run)


def real_runs() -> dict[str, tuple[dict, dict]]:
    """``{name: (qrels, run)}``: BM25's top 1,000 on each realistic split found in ../shared/data."""
    from benchmarks.settings import SCIFACT, TREC_DL
    from rankwise.data import load_beir
    from rankwise.index.retrieve import bm25_run

    out = {}
    for name, path, split in (
        ("trec-dl-5k", TREC_DL, "test"),
        ("scifact-test", SCIFACT, "test"),
        ("scifact-train", SCIFACT, "train"),
    ):
        if path.is_dir():
            ds = load_beir(path, split)
            out[name] = ({q: dict(d) for q, d in ds.qrels.items()}, bm25_run(ds, 1000, show_progress=False))
    return out


def tied_share(run: dict, depth: int = 100) -> float:
    """The share of queries whose top ``depth`` documents hold two equal scores."""
    tops = [sorted(d.values(), reverse=True)[:depth] for d in run.values()]
    return float(np.mean([len(set(t)) < len(t) for t in tops])) if tops else 0.0


def agreement(qrels: dict, outputs: dict) -> dict[str, float]:
    """Largest per-query difference of rankwise's values from pytrec_eval's and from ranx's."""
    ours, rx, te = outputs["rankwise"], outputs["ranx"], outputs["pytrec_eval"]
    qids = [q for q in qrels if q in ours["ndcg@10"]]
    diffs = {f"{m} vs pytrec_eval": max(abs(ours[m][q] - te[q][t]) for q in qids) for m, t in TREC.items()}
    ranx_qids = sorted(qids)  # ranx sorts query ids; its arrays follow that order
    for m, r in RANX.items():
        diffs[f"{m} vs ranx"] = float(np.max(np.abs(np.array([ours[m][q] for q in ranx_qids]) - np.asarray(rx[r]))))
    return diffs


def timed(sides: dict, repeats: int) -> tuple[dict[str, float], dict]:
    """Median seconds of each side over interleaved repeats (load drift hits every side alike), and the outputs."""
    times: dict[str, list[float]] = {k: [] for k in sides}
    outputs = {}
    for _ in range(repeats):
        for name, fn in sides.items():
            t0 = time.perf_counter()
            outputs[name] = fn()
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}, outputs


def measure_real(repeats: int) -> dict:
    out = {}
    for name, (qrels, run) in real_runs().items():
        sides = {side: functools.partial(fn, qrels, run) for side, fn in SIDES.items()}
        med, outputs = timed(sides, repeats)
        ours = outputs["rankwise"]
        out[name] = {
            "queries": len(ours["ndcg@10"]),
            "documents_per_query": float(np.mean([len(d) for d in run.values()])),
            "tied_top100_share": tied_share(run),
            "ndcg@10_zero_share": float(np.mean([v == 0 for v in ours["ndcg@10"].values()])),
            "seconds": med,
            "max_abs_diff_by_metric": agreement(qrels, outputs),
            "means": {m: float(np.mean(list(ours[m].values()))) for m in METRICS},
        }
        print(f"{name}: {out[name]['queries']} queries, ties in {out[name]['tied_top100_share']:.0%}; {med}")
    return out


SIDES = {"rankwise": run_rankwise, "ranx": run_ranx, "pytrec_eval": run_pytrec}


def first_call(fn, small) -> float:
    t0 = time.perf_counter()
    fn(*small)
    return time.perf_counter() - t0


_COLD = """
import sys, time
sys.path.insert(0, {here!r})
import benchmarks.metrics as b
small = b.make_data(20, 100, 10, seed=1)
t0 = time.perf_counter()
b.run_{side}(*small)
print(time.perf_counter() - t0)
"""


def cold_compile(side: str) -> float:
    """First call in a fresh process with an empty numba cache: the compile a new install pays once."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        out = subprocess.run(
            [sys.executable, "-c", _COLD.format(here=str(Path(__file__).resolve().parents[1]), side=side)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    return float(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1,000 queries x 1,000 documents, 1 repeat")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    n_queries = 1000 if args.quick else 10_000
    repeats = 1 if args.quick else args.repeats

    small = make_data(20, 100, 10, seed=1)
    compile_s = {"rankwise": first_call(run_rankwise, small), "ranx": first_call(run_ranx, small)}
    # --quick leaves out the empty-cache compile (ranx's alone takes ~30 s here)
    cold_s = None if args.quick else {"rankwise": cold_compile("rankwise"), "ranx": cold_compile("ranx")}

    t0 = time.perf_counter()
    qrels, run = make_data(n_queries, 1000, 20)
    print(f"data: {n_queries} queries x 1000 documents, 20 judged each ({time.perf_counter() - t0:.1f} s to build)")

    import ranx

    ranx_qrels, ranx_run = ranx.Qrels(qrels), ranx.Run(run)
    sides = {side: functools.partial(fn, qrels, run) for side, fn in SIDES.items()}
    sides = {  # ranx's evaluate alone, between the sides, so load drift hits every side alike
        "rankwise": sides["rankwise"],
        "ranx": sides["ranx"],
        "ranx_prebuilt": lambda: ranx.evaluate(ranx_qrels, ranx_run, list(RANX.values()), return_mean=False),
        "pytrec_eval": sides["pytrec_eval"],
    }
    med, outputs = timed(sides, repeats)

    ours = outputs["rankwise"]
    diffs = agreement(qrels, outputs)
    result = {
        "machine": machine() | {"numba_threads": int(os.environ.get("NUMBA_NUM_THREADS", os.cpu_count() or 1))},
        "queries": n_queries,
        "documents_per_query": 1000,
        "judged_per_query": 20,
        "metrics": METRICS,
        "repeats": repeats,
        "rankwise_seconds": med["rankwise"],
        "ranx_seconds": med["ranx"],
        "ranx_prebuilt_seconds": med["ranx_prebuilt"],
        "pytrec_eval_seconds": med["pytrec_eval"],
        "ratio_ranx_over_rankwise": med["ranx"] / med["rankwise"],
        "ratio_pytrec_eval_over_rankwise": med["pytrec_eval"] / med["rankwise"],
        "first_call_seconds": compile_s,
        "first_call_empty_numba_cache_seconds": cold_s,
        "max_abs_diff": max(diffs.values()),
        "max_abs_diff_by_metric": diffs,
        "means": {m: float(np.mean(list(ours[m].values()))) for m in METRICS},
        "real": measure_real(repeats),
    }
    out = RESULTS / ("metrics-quick.json" if args.quick else "metrics.json")
    write_result(out, result, PEERS)
    for k, v in med.items():
        print(f"{k:>14}: {v:.3f} s")
    print(
        f"ranx / rankwise = {result['ratio_ranx_over_rankwise']:.2f}, pytrec_eval / rankwise = {result['ratio_pytrec_eval_over_rankwise']:.2f}"
    )
    print(
        f"first calls: {compile_s}; with an empty numba cache: {cold_s}; max |diff| {result['max_abs_diff']:.2e}; wrote {out}"
    )


if __name__ == "__main__":
    main()

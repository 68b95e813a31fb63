"""Label-free adaptation: all-MiniLM-L6-v2 adapted to a corpus with pseudo-queries cropped from it,
against the same model zero-shot, on the test split (whose qrels are read to measure only).

For each dataset (SciFact, stdlib-code) and seed 0-2: one pseudo-query a document cut from the
corpus alone (``rankwise.data.pseudo.crop_queries``: ``crop-out``, a span of 4-16 words whose
positive is the document less the span, or ``ict``, a sentence whose positive is the document less
the sentence), kept when the starting model ranks its source document in its top 10 (the
consistency filter; ``filter: hybrid``, by the starting model and BM25 fused), then ``STEPS`` steps of 32 pseudo-queries, queries 32 and documents 128 tokens
while training (documents are searched at 256 tokens on SciFact, 128 on stdlib-code).

The recipe is one of ``CANDIDATES``, fixed before any run, chosen by SciFact's *train* queries
(their qrels read to choose only, seed 0): the label-free teacher is the starting model and BM25
fused (CombSUM over each one's min-max scores of a query's candidates; 0.705 test / 0.717 train
nDCG@10 as a hybrid retriever on SciFact, against the start's 0.640 / 0.658), over each
pseudo-query's positive and 3 negatives from the fused top 30 (never the source document), every
one kept with the teacher's score as GPL keeps them (``teacher_margin=none``: no candidate is
dropped for outscoring the positive), distilled with Margin-MSE (the teacher's scores times 0.25)
or listwise KL (student tau 0.05, teacher tau 0.25), at lr 2e-5 (GPL's). Two earlier rounds used
``crop``, whose positive is the whole source document: in-batch InfoNCE at 1e-4 (train 0.6458) and
Margin-MSE unscaled (0.6220) in the first (commit 0238177), KL toward the hybrid teacher (0.5853) in
the second (94fccaf), against zero-shot 0.6576: the query is copied into its positive, so the
teacher puts the source first at a median 0.97 of its target, and the student learns to match
copied spans (benchmarks/README.md). The third (aaac70c) cut ``crop-out`` and ``ict`` queries and
dropped the candidates the teacher scored above the positive (its guard at margin 0: 5,734 of
crop-out's): crop-out with KL 0.6158 (halfway 0.6483), with Margin-MSE 0.6262 (0.6527), ict with KL 0.6368
(0.6570). The fourth (a3a6e19) kept every candidate (``teacher_margin=none``): ict with Margin-MSE
0.6398 (0.6533), ict with KL 0.6407 (0.6575), crop-out with Margin-MSE 0.6528 (**0.6619**), chosen;
its test runs are ``benchmarks/results/adapt.json``: SciFact +0.95 nDCG@10 (p 0.149), stdlib-code
-0.71 (p 0.176), 3 seeds (the records, and the third round's, in ``benchmarks/runs/adapt-rounds-3-4/``).
The fifth round's candidates keep that recipe and change one thing each: the consistency filter by
the hybrid (it keeps the pseudo-queries a lexical match finds and the model misses, those the hybrid
teacher has most to teach on), or 7 negatives a query instead of 3 (more of the teacher's margins).
Every run is also measured interpolated halfway back to the starting weights (WiSE-FT, alpha 0.5,
``rankwise.training.wise_ft``), and the choice is among candidates x {as trained, halfway}. The
chosen recipe runs on both datasets; their test queries are read to measure only.
Test nDCG@10 per query of every run is stored; ``p_seed_aware`` is the two-level bootstrap over
queries and seeds (``rankwise.metrics.significance.two_level_bootstrap``) of adapted minus zero-shot.

    python benchmarks/adapt.py [--datasets scifact,stdlib-code] [--steps 150]
    python benchmarks/adapt.py --smoke   # 2 steps on 300 documents of stdlib-code; writes nothing
    python benchmarks/adapt.py --table   # the README table from benchmarks/results/adapt.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: benchmarks is a package
from benchmarks._cache import RunCache  # noqa: E402
from benchmarks._machine import machine, write_result  # noqa: E402
from benchmarks.settings import RESULTS, RUNS, SCIFACT  # noqa: E402
from rankwise.data import load_beir  # noqa: E402
from rankwise.data.pseudo import consistent, crop_queries, pseudo_dataset  # noqa: E402
from rankwise.data.stdlib_code import ensure_built  # noqa: E402
from rankwise.index.retrieve import cached_embeddings, corpus_texts, dense_run  # noqa: E402
from rankwise.metrics.ranking import evaluate_arrays  # noqa: E402
from rankwise.metrics.significance import two_level_bootstrap  # noqa: E402
from rankwise.models import BiEncoder  # noqa: E402
from rankwise.training import TrainConfig, train  # noqa: E402
from rankwise.training.wise_ft import interpolate_weights  # noqa: E402

OUT = RESULTS / "adapt.json"
PEERS = ()
SEEDS = [0, 1, 2]
STEPS = 150
COMMON = {"batch_size": 32, "query_max_length": 32, "doc_max_length": 128}
HYBRID = "fused:k=3,window=1-30,fusion=combsum:min-max,teacher=default+bm25"  # the label-free teacher
# teacher tau 0.25: on the smoke run's 240 crop-out pseudo-queries of 300 SciFact documents (no
# qrels), the target's weight on the positive has median 0.99 at 0.1 (near one-hot), 0.82 at 0.25
KL = "kl:temperature=0.05,teacher_temperature=0.25"
GPL = f"{HYBRID},teacher_margin=none"  # GPL's pseudo-labels: no candidate dropped for outscoring the positive
MMSE = {"loss": "margin_mse", "negatives": f"{GPL},teacher_scale=0.25", "lr": 2e-5}
CROP_OUT = {"method": "crop-out"} | MMSE  # the fourth round's choice (a3a6e19)
CANDIDATES = {  # method: how pseudo-queries are cut; filter: the consistency filter; the rest is the TrainConfig
    "crop-out-mmse-gpl-hybrid-filter": CROP_OUT | {"filter": "hybrid"},
    "crop-out-mmse-gpl-k7": CROP_OUT | {"negatives": MMSE["negatives"].replace("k=3", "k=7")},
    "crop-out-mmse-gpl": CROP_OUT,  # last: a re-run of the fourth round's choice on this commit's code
}
NOT_TRAIN = ("method", "filter")  # recipe keys that are not TrainConfig fields
WISE_ALPHA, WISE = 0.5, "+wise0.5"  # every run is also measured interpolated halfway to the start
CHOOSE_ON = ("scifact", "train")  # queries whose qrels choose the recipe (never the test queries)
FILTER_K = 10
DOC_LENGTH = {"scifact": 256, "stdlib-code": 128}  # searched at this length; trained at COMMON's


def split(name: str, which: str, docs: int | None):
    path = ensure_built() if name == "stdlib-code" else SCIFACT
    ds = load_beir(path, which).own_split()
    if docs:  # --smoke: the first documents and the queries judging them
        return ds.restrict_corpus(set(list(ds.corpus)[:docs]))
    return ds


def ndcg_per_split(model: BiEncoder, evals: dict, *, cache: bool = False) -> dict[str, dict[str, float]]:
    """nDCG@10 per query of each split, the shared corpus encoded once (``cache``: through the
    embeddings cache, for the starting model, whose embeddings the consistency filter reuses)."""
    _, texts = corpus_texts(next(iter(evals.values())))
    emb = cached_embeddings(model, texts) if cache else model.encode(texts, "doc", batch_size=128)
    out = {}
    for which, ds in evals.items():
        qids, values = evaluate_arrays(
            ds.qrels, dense_run(model, ds, 100, show_progress=False, embeddings=emb), ["ndcg@10"]
        )
        out[which] = {q: float(v) for q, v in zip(qids, values["ndcg@10"])}
    return out


def start_model(name: str) -> BiEncoder:
    return BiEncoder.load(None, query_max_length=32, doc_max_length=DOC_LENGTH[name])


def adapt_once(name: str, evals: dict, recipe: dict, seed: int, steps: int, folder: Path) -> dict:
    """One seed: pseudo-queries from the corpus alone, filtered, trained; nDCG@10 per query of each
    split in ``evals`` (they share one corpus: SciFact's train queries choose, its test queries report)."""
    corpus = next(iter(evals.values())).corpus
    model = start_model(name)
    made = crop_queries(corpus, method=recipe["method"], seed=seed)
    by = recipe.get("filter", "model")
    kept = consistent(made, model, corpus, FILTER_K, cache=True, by=by)  # the start's embeddings, cached once
    t0 = time.perf_counter()
    cfg = TrainConfig(**COMMON, **{k: v for k, v in recipe.items() if k not in NOT_TRAIN}, steps=steps, seed=seed)
    mined = pseudo_dataset(corpus, kept)  # what a mining strategy searches for each pseudo-query
    train(model, kept, cfg, folder / "run", corpus=mined, resume=True, log=lambda m: print(m, flush=True))
    seconds = time.perf_counter() - t0
    halfway = interpolate_weights(start_model(name), model, WISE_ALPHA)  # WiSE-FT: half start, half adapted
    return {
        "pseudo_queries": len(made),
        "kept": len(kept),
        "train_seconds": seconds,
        "per_query": ndcg_per_split(model, evals),
        "per_query_wise": ndcg_per_split(halfway, evals),
        "machine": machine(),
    }


class Study:
    """The runs of one dataset, each trained once and measured on every split it has."""

    def __init__(self, cache: RunCache, name: str, steps: int, docs: int | None) -> None:
        which = ["train", "test"] if name == CHOOSE_ON[0] else ["test"]
        self.cache, self.name, self.steps = cache, name, steps
        self.evals = {w: split(name, w, docs) for w in which}
        self.base = {"dataset": name, "splits": which, "steps": steps, "docs": docs, "filter_k": FILTER_K} | COMMON

    def zero_shot(self) -> dict:
        def measure(_) -> dict:
            model = start_model(self.name)
            return {"per_query": ndcg_per_split(model, self.evals, cache=True)}

        return self.cached_run({"zero_shot": True}, measure)

    def adapted(self, recipe: dict, seed: int) -> dict:
        print(f"adapt {self.name} seed {seed}: {recipe}", flush=True)
        return self.cached_run(
            recipe | {"seed": seed}, lambda d: adapt_once(self.name, self.evals, recipe, seed, self.steps, d)
        )

    def cached_run(self, key: dict, make) -> dict:
        return self.cache.run(self.base | key, make)


def mean(run: dict, which: str, key: str = "per_query") -> float:
    return float(np.mean(list(run[key][which].values())))


def choose(study: Study) -> tuple[str, dict]:
    """Each candidate once (seed 0), as trained and interpolated halfway back (WiSE-FT), judged on
    the choosing split's queries; the best mean nDCG@10 wins (ties: the earlier)."""
    which = CHOOSE_ON[1]
    scores = {"zero-shot": mean(study.zero_shot(), which)}
    for label, recipe in CANDIDATES.items():
        run = study.adapted(recipe, 0)
        scores[label], scores[label + WISE] = mean(run, which), mean(run, which, "per_query_wise")
        print(
            f"choose: {label} {scores[label]:.4f}, {WISE} {scores[label + WISE]:.4f} "
            f"(zero-shot {scores['zero-shot']:.4f})",
            flush=True,
        )
    best = max((k for k in scores if k != "zero-shot"), key=scores.get)
    return best, {"on": f"{study.name} {which} queries, seed 0", "ndcg@10": scores, "chosen": best}


def recipe_of(chosen: str) -> tuple[dict, str]:
    """The chosen candidate's recipe and the per-query key it is measured by."""
    name = chosen.removesuffix(WISE)
    return CANDIDATES[name], "per_query_wise" if chosen.endswith(WISE) else "per_query"


def entry(study: Study, chosen: str, seeds: list[int]) -> dict:
    recipe, key = recipe_of(chosen)
    zero = study.zero_shot()["per_query"]["test"]
    runs = [study.adapted(recipe, seed) for seed in seeds]
    qids = sorted(zero)
    adapted = np.array([[r[key]["test"][q] for q in qids] for r in runs])
    start = np.array([[zero[q] for q in qids]])
    diff, ci, p = two_level_bootstrap(adapted, start)
    return {
        "zero_shot": {"ndcg@10": float(start.mean())},
        "adapted": {
            "ndcg@10": float(adapted.mean()),
            "seeds": adapted.mean(axis=1).tolist(),
            "kept": [r["kept"] for r in runs],
            "pseudo_queries": runs[0]["pseudo_queries"],
            "train_seconds": [round(r["train_seconds"], 1) for r in runs],
        },
        "diff": diff,
        "diff_ci": list(ci),
        "p_seed_aware": p,
        "queries": len(qids),
        "per_query": {"qids": qids, "zero_shot": start[0].tolist(), "adapted": adapted.tolist()},
    }


def markdown(result: dict) -> str:
    """The README's table and choice line, from a results file."""
    sel = result["settings"]["selection"]
    choice = ", ".join(f"{k} {v:.4f}" for k, v in sel["ndcg@10"].items())
    rows = [
        "| test split | zero-shot nDCG@10 | adapted nDCG@10 (seeds) | diff [95% CI] | p (queries x seeds) | pseudo-queries kept |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, d in result["datasets"].items():
        seeds = ", ".join(f"{v:.4f}" for v in d["adapted"]["seeds"])
        lo, hi = (100 * x for x in d["diff_ci"])
        kept = "/".join(str(k) for k in d["adapted"]["kept"])
        rows.append(
            f"| {name} ({d['queries']} queries) | {d['zero_shot']['ndcg@10']:.4f} | {d['adapted']['ndcg@10']:.4f} ({seeds}) "
            f"| {100 * d['diff']:+.2f} [{lo:+.2f}, {hi:+.2f}] | {d['p_seed_aware']:.3g} | {kept} of {d['adapted']['pseudo_queries']} |"
        )
    return f"Choice ({sel['on']}): {choice}; chosen: {sel['chosen']}.\n\n" + "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="scifact,stdlib-code")
    ap.add_argument("--steps", type=int, default=STEPS)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--table", action="store_true", help="print the README table from the results file and stop")
    args = ap.parse_args()
    if args.table:
        print(markdown(json.loads(OUT.read_text())))
        return
    steps, seeds, docs = (2, SEEDS[:2], 300) if args.smoke else (args.steps, SEEDS, None)
    if args.smoke:  # 300 code documents give fewer than 32 inverse-cloze examples
        COMMON["batch_size"] = 8
    names = ["stdlib-code"] if args.smoke else args.datasets.split(",")
    cache = RunCache("adapt-smoke" if args.smoke else "adapt", keep=None if args.smoke else RUNS / "adapt")
    chosen, selection = choose(Study(cache, CHOOSE_ON[0], steps, docs))
    if selection["ndcg@10"][chosen] <= selection["ndcg@10"]["zero-shot"] and not args.smoke:
        print(f"no candidate beats the zero-shot model on {selection['on']}: no test runs, nothing written")
        return
    datasets = {name: entry(Study(cache, name, steps, docs), chosen, seeds) for name in names}
    if args.smoke:
        print(
            selection, {k: {kk: v[kk] for kk in ("zero_shot", "adapted", "p_seed_aware")} for k, v in datasets.items()}
        )
        return
    settings = {"candidates": CANDIDATES, "common": COMMON, "steps": steps, "filter_k": FILTER_K}
    settings |= {"doc_length": DOC_LENGTH, "selection": selection, "recipe": recipe_of(chosen)[0]}
    settings |= {"wise_ft_alpha": WISE_ALPHA if chosen.endswith(WISE) else 1.0}
    write_result(OUT, {"machine": machine(), "settings": settings, "seeds": seeds, "datasets": datasets}, PEERS)


if __name__ == "__main__":
    main()

"""Models that beat the peer: rankwise's dense model and hybrid against sentence-transformers' tuned
recipe and its hybrid, five seeds a side, every choice on dev with the same budget for both sides.

Systems, on ``stdlib-code`` and SciFact (train less 100 held-out dev queries; SciFact's test
queries 870 and 1292, which repeat training queries word for word, removed):

* ``peer``: ``SentenceTransformerTrainer`` + ``MultipleNegativesRankingLoss`` over
  ``mine_hard_negatives`` triplets (``recipes_vs_peer.train_peer``); its grid, 6 candidates:
  learning rate in {2e-5, 5e-5, 1e-4} x mining {its documented example: range 10-50, max_score 0.8,
  relative_margin 0.05, random sampling; top-30 with absolute margin 0}. Its queries are scored at
  the length it trained them at, its one ``max_seq_length`` (the documents').
* ``rankwise-dense``: a dual encoder distilled from the ensemble teacher (below) over mined
  negatives the teacher scored, NGAME batches; its grid, 6 candidates: learning rate in
  {5e-5, 1e-4, 2e-4} x loss {InfoNCE + listwise KL, Margin-MSE + 0.75 KL}.
* ``peer-hybrid``: ranx's fusion (``optimize_fusion``: weighted sum over min-max, weights on dev in
  steps of 0.1) of the peer model and BM25; ``rankwise-hybrid``: ``rw.Fusion.tune`` over the same
  grid (CombSUM over min-max, weights in steps of 0.1) of the rankwise model and BM25, on dev.
* the ensemble teacher, trained once a dataset and shared by every seed: a dual encoder (the
  recipe study's ``bm25+ngame+fn``), a cross-encoder started from that dual encoder's weights
  (ListNet over its dense-mined lists), and BM25, each min-max normalised per query and averaged.

Each side's candidates train at seed 0 and are chosen on dev nDCG@10; the choice then trains at
seeds 0-4, each ``STEPS`` steps of 32 queries at the recipe study's lengths. Test nDCG@10 per query
of every run is stored; comparisons (``diff`` = a - b) use the two-level bootstrap over queries and
seeds (``rankwise.metrics.significance.two_level_bootstrap``), Holm-corrected within a dataset. Every
model is also scored zero-shot on ``trec-dl-5k``; ``worst_drop_vs_start`` is the largest loss of any
rankwise model against the untrained model. The test queries are also split by whether
their positive is a training positive (means and differences only, exploratory).

Each run is cached as it finishes (``benchmarks/runs/effectiveness/``), so the study runs in the
background and continues after an interruption; ``--minutes`` stops starting new runs.

    python benchmarks/effectiveness.py [--datasets stdlib-code,scifact] [--minutes 80]
    python benchmarks/effectiveness.py --smoke   # the plumbing: 2 steps, one candidate a side, no results file
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: benchmarks is a package
from benchmarks import recipes_vs_peer as study  # noqa: E402
from benchmarks._cache import RunCache  # noqa: E402
from benchmarks._machine import machine, write_result  # noqa: E402
from benchmarks.settings import RESULTS, RUNS, SHARED  # noqa: E402
from rankwise.data import examples_from_qrels, load_beir  # noqa: E402
from rankwise.index.fusion import Fusion  # noqa: E402
from rankwise.index.retrieve import bm25_run, dense_run  # noqa: E402
from rankwise.metrics.ranking import evaluate_arrays  # noqa: E402
from rankwise.metrics.significance import holm, two_level_bootstrap  # noqa: E402
from rankwise.models import BiEncoder, CrossEncoder  # noqa: E402
from rankwise.negatives.mining import MineOptions, mine  # noqa: E402
from rankwise.negatives.strategies import attach_mined  # noqa: E402
from rankwise.training import TrainConfig, train  # noqa: E402

OUT = RESULTS / "effectiveness.json"
PEERS = ("ranx",)
STEPS = 150
SEEDS = [0, 1, 2, 3, 4]
DUPLICATES = {"scifact": ("870", "1292")}  # test queries that repeat training queries word for word
PEER_LRS = (2e-5, 5e-5, 1e-4)
PEER_MINING = {
    "documented": {
        "range_min": 10,
        "range_max": 50,
        "max_score": 0.8,
        "relative_margin": 0.05,
        "sampling_strategy": "random",
        "num_negatives": 5,
    },
    "top-30,margin-0": {"range_min": 0, "range_max": 30, "absolute_margin": 0.0, "num_negatives": 5},
}
OUR_LRS = (5e-5, 1e-4, 2e-4)
OUR_LOSSES = {
    "infonce+kl": "infonce:temperature=0.05+kl:temperature=0.05",
    "margin-mse+kl": "margin_mse+0.75*kl",
}
BATCHING = "ngame:every=30,cluster_size=8"
DEPTH = 100  # fused and scored runs: each system's top 100


def data_for(name: str, queries: int | None) -> dict:
    data = study.splits(name)
    drop = set(DUPLICATES.get(name, ()))
    test = data["test"]
    data["test"] = type(test)(
        test.corpus, test.queries, {q: j for q, j in test.qrels.items() if q not in drop}, test.path, test.split
    )
    if queries:  # --smoke: a sample of the training queries
        train_ds = data["train"]
        keep = sorted(train_ds.qrels)[:queries]
        data["train"] = type(train_ds)(
            train_ds.corpus, train_ds.queries, {q: train_ds.qrels[q] for q in keep}, train_ds.path, train_ds.split
        )
    data["code"] = name == "stdlib-code"  # BM25 splits code identifiers there
    return data


def lengths(name: str) -> dict:
    opts = study.DATASETS[name]
    return {"query_max_length": opts["query_max_length"], "doc_max_length": opts["doc_max_length"]}


def per_query(qrels: dict, run: dict) -> tuple[dict, dict]:
    qids, values = evaluate_arrays(qrels, run, ["ndcg@10", "recall@100"])
    means = {m: float(v.mean()) for m, v in values.items()}
    return means, {q: float(x) for q, x in zip(qids, values["ndcg@10"])}


def bm25_runs(data: dict) -> dict:
    return {split: bm25_run(data[split], DEPTH, code=data["code"], show_progress=False) for split in ("dev", "test")}


def fuse_on_dev(side: str, dense: dict, lexical: dict, dev_qrels: dict) -> tuple[str, dict]:
    """The hybrid's test run: weights chosen on dev by the peer's own fusion (ranx) or by rankwise's."""
    if side == "peer":
        from ranx import Qrels, Run, fuse, optimize_fusion

        runs_dev = [Run(dense["dev"]), Run(lexical["dev"])]
        best = optimize_fusion(Qrels(dev_qrels), runs_dev, norm="min-max", method="wsum", metric="ndcg@10", step=0.1)
        fused = fuse([Run(dense["test"]), Run(lexical["test"])], norm="min-max", method="wsum", params=best)
        return f"ranx wsum min-max {best}", fused.to_dict()
    tuned = Fusion.tune([dense["dev"], lexical["dev"]], dev_qrels, methods=("combsum",), norms=("min-max",), step=0.1)
    return str(tuned.fusion), tuned.fusion.fuse([dense["test"], lexical["test"]])


def score(model: BiEncoder, side: str, data: dict, lexical: dict, trec) -> dict:
    """A trained model's dev and test figures, its hybrid's, and its zero-shot trec-dl-5k nDCG@10."""
    dense = {split: dense_run(model, data[split], DEPTH, show_progress=False) for split in ("dev", "test")}
    dev, _ = per_query(data["dev"].qrels, dense["dev"])
    test, test_q = per_query(data["test"].qrels, dense["test"])
    how, fused = fuse_on_dev(side, dense, lexical, data["dev"].qrels)
    hybrid, hybrid_q = per_query(data["test"].qrels, fused)
    found = {"dev": dev, "test": test, "per_query": test_q, "hybrid": {"fusion": how, "test": hybrid}}
    found["hybrid"]["per_query"] = hybrid_q
    if trec is not None:  # zero-shot at the recipe study's trec-dl-5k lengths, as the untrained model
        model.config.query_max_length = model.config.doc_max_length = study.TREC_LENGTH
        found["trec-dl-5k"] = per_query(trec.qrels, dense_run(model, trec, DEPTH, show_progress=False))[0]
    return found


class Study:
    """One dataset's runs: the teacher, each side's dev candidates, the chosen ones' seeds."""

    def __init__(self, name: str, cache: RunCache, trec, steps: int, queries: int | None) -> None:
        self.name, self.cache, self.trec, self.steps = name, cache, trec, steps
        self.data = data_for(name, queries)
        self.lexical = bm25_runs(self.data)
        self.base = {"dataset": name, "steps": steps, "queries": queries, **lengths(name)}
        self.last: dict = {}  # entry(): the table's figures once both sides are in

    # -------------------------------------------------------------------- the teacher
    def teacher(self) -> Path:
        """The ensemble's mined, teacher-scored negatives (trained and mined once a dataset)."""
        key = self.base | {"teacher": "dual+ce+bm25", "dual": study.RECIPES["bm25+ngame+fn"]}
        folder = self.cache.workdir(key)
        mined = folder / "negatives.jsonl"
        if mined.is_file():
            return mined
        dual_dir, ce_dir = folder / "dual", folder / "ce"
        if not (dual_dir / "config.json").is_file():
            recipe = dict(study.RECIPES["bm25+ngame+fn"])
            recipe["negatives"] += ",code=true" if self.data["code"] else ""
            model = BiEncoder.load(None, **lengths(self.name))
            cfg = TrainConfig(**recipe, steps=self.steps, batch_size=32, lr=1e-4, seed=0, **lengths(self.name))
            train(model, self.data["train"], cfg, folder / "dual-run", resume=True, log=study.log)
            model.save(dual_dir)
        if not (ce_dir / "config.json").is_file():
            ce = CrossEncoder(dual_dir, max_length=sum(lengths(self.name).values()))
            neg = f"dense:window=1-30,k=7,model={dual_dir},max_length={lengths(self.name)['doc_max_length']}"
            cfg = TrainConfig(loss="listnet", negatives=neg, steps=self.steps, batch_size=16, list_size=8, lr=2e-5)
            train(ce, self.data["train"], cfg, folder / "ce-run", resume=True, log=study.log)
            ce.save(ce_dir)
        opts = MineOptions(
            method="dense", k=7, window=(1, 30), margin=0.0, teacher=f"{ce_dir}+{dual_dir}+bm25",
            max_length=lengths(self.name)["doc_max_length"], code=self.data["code"],
        )  # fmt: skip
        mine(self.data["train"], opts, mined, show_progress=False, log_fn=study.log)
        return mined

    # -------------------------------------------------------------------- the runs
    def candidates(self, side: str) -> dict[str, dict]:
        if side == "peer":
            return {f"lr={lr},{m}": {"lr": lr, "mining": PEER_MINING[m]} for lr in PEER_LRS for m in PEER_MINING}
        return {f"lr={lr},{k}": {"lr": lr, "loss": v} for lr in OUR_LRS for k, v in OUR_LOSSES.items()}

    def settings(self, side: str, candidate: dict, seed: int) -> dict:
        return self.base | {"side": side, "seed": seed} | candidate

    def run(self, s: dict) -> dict:
        study.log(f"train {s}")
        t0 = time.perf_counter()
        folder = self.cache.workdir(s)
        if s["side"] == "peer":
            model, _ = study.train_peer(self.data, s | {"peer": "grid"}, folder, curve=False)
            model.config.query_max_length = s["doc_max_length"]  # its queries as it trained them: one max_seq_length
        else:
            model = BiEncoder.load(None, **lengths(self.name))
            examples = examples_from_qrels(self.data["train"])
            attach_mined(examples, self.teacher(), self.data["train"])
            cfg = TrainConfig(
                loss=s["loss"], negatives="file", batching=BATCHING, steps=s["steps"], batch_size=32,
                lr=s["lr"], seed=s["seed"], **lengths(self.name),
            )  # fmt: skip
            train(model, examples, cfg, folder / "run", resume=True, log=study.log)
        found = score(model, s["side"], self.data, self.lexical, self.trec)
        found["train_seconds"] = time.perf_counter() - t0
        found["machine"] = machine()
        self.cache.put(s, found)
        study.log(f"  dev {found['dev']['ndcg@10']:.4f} test {found['test']['ndcg@10']:.4f}")
        return found

    def chosen(self, side: str) -> str | None:
        dev = {k: self.cache.get(self.settings(side, c, SEEDS[0])) for k, c in self.candidates(side).items()}
        if None in dev.values():
            return None
        return max(dev, key=lambda k: dev[k]["dev"]["ndcg@10"])

    def todo(self, side: str, seeds: list[int]) -> list[dict]:
        choice, cands = self.chosen(side), self.candidates(side)
        wanted = [self.settings(side, c, seeds[0]) for c in cands.values()] if choice is None else []
        wanted += [self.settings(side, cands[choice], s) for s in seeds] if choice else []
        return [s for s in wanted if self.cache.get(s) is None]

    def advance(self, deadline: float, seeds: list[int]) -> None:
        while time.monotonic() < deadline:
            todo = self.todo("rankwise", seeds) + self.todo("peer", seeds)
            if not todo:
                return
            self.run(sorted(todo, key=lambda s: not self.cache.started(s))[0])

    # -------------------------------------------------------------------- the table
    def entry(self, seeds: list[int]) -> dict:
        """The dataset's systems and comparisons, once both sides' seeds are all in."""
        runs = {}
        for side in ("rankwise", "peer"):
            choice = self.chosen(side)
            found = (
                [self.cache.get(self.settings(side, self.candidates(side)[choice], s)) for s in seeds] if choice else []
            )
            if not found or None in found:
                return {"status": f"{side}: {'chosen ' + choice if choice else 'choosing on dev'}, not finished"}
            runs[side] = (choice, found)
        seen = {d for judged in self.data["train"].qrels.values() for d, rel in judged.items() if rel > 0}
        positives = {q: {d for d, rel in judged.items() if rel > 0} for q, judged in self.data["test"].qrels.items()}
        return table(runs, {q for q, ds in positives.items() if ds & seen}) | {"runs": runs}


SYSTEMS = {  # the table's systems: (side, whether the hybrid)
    "peer": ("peer", False),
    "peer-hybrid": ("peer", True),
    "rankwise-dense": ("rankwise", False),
    "rankwise-hybrid": ("rankwise", True),
}
PAIRS = [("rankwise-dense", "peer"), ("rankwise-hybrid", "peer-hybrid"), ("rankwise-hybrid", "peer")]


def table(runs: dict[str, tuple[str, list[dict]]], seen: set[str]) -> dict:
    """One dataset's systems (mean, two-level bootstrap interval, per-seed means, per-query values
    seed by seed) and comparisons (``diff`` = a - b, seed-aware p, Holm within the dataset), from
    each side's ``(choice, [run record per seed])``; then the same means and differences on the test
    queries whose positive is (``seen``) or is not a training positive, exploratory (no test)."""
    qids = sorted(set.intersection(*(set(r["per_query"]) for _, rs in runs.values() for r in rs)))
    mats = {
        name: np.array([[(r["hybrid"] if hybrid else r)["per_query"][q] for q in qids] for r in runs[side][1]])
        for name, (side, hybrid) in SYSTEMS.items()
    }
    systems = {}
    for name, m in mats.items():
        mean, ci, _ = two_level_bootstrap(m)
        per_query = {q: m[:, i].tolist() for i, q in enumerate(qids)}
        systems[name] = {"ndcg@10": mean, "ci": list(ci), "per_seed": m.mean(axis=1).tolist(), "per_query": per_query}
    systems["peer"]["choice"], systems["rankwise-dense"]["choice"] = runs["peer"][0], runs["rankwise"][0]
    comparisons = []
    for a, b in PAIRS:
        diff, ci, p = two_level_bootstrap(mats[a], mats[b])
        comparisons.append({"a": a, "b": b, "diff": diff, "ci": list(ci), "p_seed_aware": p})
    for c, adjusted in zip(comparisons, holm([c["p_seed_aware"] for c in comparisons])):
        c["p_holm"] = adjusted
    split = {}
    for label, keep in (("positive_seen_in_training", True), ("positive_unseen", False)):
        cols = [i for i, q in enumerate(qids) if (q in seen) == keep]
        means = {name: float(m[:, cols].mean()) if cols else None for name, m in mats.items()}
        diffs = {f"{a} - {b}": means[a] - means[b] if cols else None for a, b in PAIRS}
        split[label] = {"queries": len(cols), "ndcg@10": means, "diff": diffs}
    return {"queries": len(qids), "systems": systems, "comparisons": comparisons, "exploratory_split": split}


def zero_shot(studies: list[Study], trec, cache: RunCache) -> dict:
    """trec-dl-5k nDCG@10 of the untrained model and of every finished model, and the worst drop."""
    key = {"zero_shot": "all-MiniLM-L6-v2", "depth": DEPTH}

    def measure(_) -> dict:
        model = BiEncoder.load(None, query_max_length=study.TREC_LENGTH, doc_max_length=study.TREC_LENGTH)
        return per_query(trec.qrels, dense_run(model, trec, DEPTH, show_progress=False))[0]

    start = cache.run(key, measure)
    out: dict = {"start": start["ndcg@10"]}
    drops = []
    for st in studies:
        for side, (_, found) in st.last.get("runs", {}).items():
            values = [r["trec-dl-5k"]["ndcg@10"] for r in found]
            out[f"{st.name}:{side}"] = float(np.mean(values))
            if side == "rankwise":
                drops += [start["ndcg@10"] - v for v in values]
    out["worst_drop_vs_start"] = max(drops) if drops else None
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="stdlib-code,scifact")
    ap.add_argument("--minutes", type=float, default=float("inf"), help="start no new run after this long")
    ap.add_argument("--smoke", action="store_true", help="2 steps, 200 training queries, one seed; writes nothing")
    args = ap.parse_args()
    if args.smoke:
        global PEER_LRS, OUR_LRS, PEER_MINING, OUR_LOSSES  # one candidate a side
        PEER_LRS, OUR_LRS = PEER_LRS[-1:], OUR_LRS[1:2]
        PEER_MINING = {"top-30,margin-0": PEER_MINING["top-30,margin-0"]}
        OUR_LOSSES = {"infonce+kl": OUR_LOSSES["infonce+kl"]}
    steps, queries, seeds = (2, 200, SEEDS[:1]) if args.smoke else (STEPS, None, SEEDS)
    deadline = time.monotonic() + 60 * args.minutes
    cache = RunCache(
        "effectiveness-smoke" if args.smoke else "effectiveness", keep=None if args.smoke else RUNS / "effectiveness"
    )
    trec = load_beir(SHARED / "trec-dl-5k", "test")
    studies = []
    for name in args.datasets.split(","):
        st = Study(name, cache, trec, steps, queries)
        st.advance(deadline, seeds)
        st.last = st.entry(seeds)
        studies.append(st)
    datasets = {st.name: {k: v for k, v in st.last.items() if k != "runs"} for st in studies}
    result = {"machine": machine(), "seeds": seeds, "steps": steps, "datasets": datasets}
    result["trec-dl-5k"] = zero_shot(studies, trec, cache)
    result["settings"] = {
        "peer_lrs": PEER_LRS,
        "peer_mining": PEER_MINING,
        "our_lrs": OUR_LRS,
        "our_losses": OUR_LOSSES,
    }
    if args.smoke:
        study.log(f"smoke: {datasets} {result['trec-dl-5k']}")
        return
    unfinished = {name: d["status"] for name, d in datasets.items() if "status" in d}
    if unfinished:  # the results file holds finished tables only; the runs so far are cached
        study.log(f"not written: {unfinished}")
        return
    write_result(OUT, result, PEERS)
    study.log(f"written {OUT}")


if __name__ == "__main__":
    main()

"""The cost-quality frontier: a Matryoshka-trained dual encoder against a plainly trained one, at
64/128/256/384 dimensions x fp32/int8/binary embeddings, over three training seeds.

For each dataset (stdlib-code, SciFact) and seed (42, 43, 44), both models start from
all-MiniLM-L6-v2 and train on the train qrels' (query, positive) pairs with the same recipe (InfoNCE
at temperature 0.05, in-batch negatives, ``--steps`` steps of 32, lr 1e-4, queries 32 and documents
128 tokens (256 for SciFact)); the Matryoshka model adds Matryoshka terms at 64/128/256 dimensions
and starts from the encoder rotated onto the principal axes of its training documents' embeddings
(``principal_axes``: an orthogonal map, so the full vector's cosines do not change, while a
128-dimension prefix keeps far more: zero-shot nDCG@10 at 128 dimensions 0.574 -> 0.637 on
stdlib-code's dev split, 0.592 -> 0.629 on SciFact's train queries, against 0.650 and 0.658 at 384;
measured before any training, on no test query).

The Matryoshka recipe is one of ``CANDIDATES`` (the terms' weights) x a second rotation onto the
fine-tuned model's principal axes or none, chosen before any test query is read: seed 42, trained
on stdlib-code's train split and scored on its dev split, and on SciFact's train queries less
``DEV_SCIFACT`` held out (SciFact has no dev split) and scored on those; the best mean fp32 nDCG@10
at 128 dimensions over the two wins (ties: the earlier). The plain recipe is the loss comparison's,
untuned.

Each model is scored on the test split by ``rankwise.metrics.frontier.frontier``: exact search over
every cell's stored codes, nDCG@10 per query, index bytes. Per cell: nDCG@10 (mean over seeds, and
per seed) and ``p``, the two-level bootstrap over queries and seeds of the cell minus the same
model's full size at fp32 (seed by seed), Holm-corrected over each dataset's table (``p_holm``).
The issue's bar, the Matryoshka model at 128 dimensions against the plain model at 384, is reported
with its seed-aware interval and p (``bar``).

    python benchmarks/frontier.py [--steps 90] [--datasets stdlib-code,scifact] [--seeds 3]
    python benchmarks/frontier.py --table   # the README tables from benchmarks/results/frontier.json

Every run is kept in the run cache keyed by settings and code (``benchmarks/runs/frontier/``, so a
later session continues). Writes benchmarks/results/frontier.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: benchmarks is a package
from benchmarks._cache import RunCache  # noqa: E402
from benchmarks._machine import machine, write_result  # noqa: E402
from benchmarks.settings import RESULTS, RUNS, SCIFACT, SEED  # noqa: E402

OUT = RESULTS / "frontier.json"
PEERS = ()
DIMS, PRECISIONS = (64, 128, 256, 384), ("fp32", "int8", "binary")
SYSTEMS = ("plain", "matryoshka")
SEEDS = (SEED, SEED + 1, SEED + 2)
CANDIDATES = {  # the Matryoshka terms; each also tried with a second rotation after training
    "equal": "matryoshka:dims=64/128/256",
    "128x4": "matryoshka:dims=64/128/256,weights=1/4/1",  # the prefix the bar measures, weighted up
}
DEV_SCIFACT = 160  # SciFact's train queries held out to choose on (a fifth of 809)
CHOICE_DIMS = 128


def dataset(name: str, split: str):
    from rankwise.data import load_beir
    from rankwise.data.stdlib_code import ensure_built

    return load_beir(ensure_built() if name == "stdlib-code" else SCIFACT, split).own_split()


def splits(name: str, stage: str):
    """(train, scored): the test split for the table; for the choice a dev split, or SciFact's
    train queries with ``DEV_SCIFACT`` of them held out."""
    if stage == "test":
        return dataset(name, "train"), dataset(name, "test")
    if name == "stdlib-code":
        return dataset(name, "train"), dataset(name, "dev")
    return dataset(name, "train").hold_out(DEV_SCIFACT, seed=0)


def settings(data: str, system: str, steps: int, seed: int, recipe: dict | None = None, stage: str = "test") -> dict:
    recipe = recipe or {}
    return {
        "data": data,
        "system": system,
        "stage": stage,
        "steps": steps,
        "loss": "infonce:temperature=0.05",
        "batch_size": 32,
        "lr": 1e-4,
        "query_max_length": 32,
        "doc_max_length": 128 if data == "stdlib-code" else 256,
        "seed": seed,
        "embedding_terms": recipe.get("terms") if system == "matryoshka" else None,
        "principal_axes": system == "matryoshka",
        "rerotate": bool(recipe.get("rerotate")) and system == "matryoshka",
        "dims": list(DIMS) if stage == "test" else [CHOICE_DIMS],
        "precisions": list(PRECISIONS) if stage == "test" else ["fp32"],
    }


def trained(s: dict, train_split, folder: Path):
    from rankwise.data import examples_from_qrels
    from rankwise.models import BiEncoder
    from rankwise.training import TrainConfig, train

    model = BiEncoder.load(query_max_length=s["query_max_length"], doc_max_length=s["doc_max_length"])
    keys = ("loss", "batch_size", "lr", "query_max_length", "doc_max_length", "seed", "embedding_terms", "steps")
    examples = examples_from_qrels(train_split)
    cfg = TrainConfig(**{k: s[k] for k in (*keys, "principal_axes")}, checkpoint_every=10_000)
    result = train(model, examples, cfg, folder / "train")
    return model, examples, result.seconds


def run_one(s: dict, folder: Path) -> dict:
    """Train one system on one dataset and seed; measure its frontier on the scored split (for the
    choice: nDCG@10 at 128 dimensions before and after a second rotation)."""
    from rankwise.families.dual import rotate_onto_training_documents
    from rankwise.metrics.frontier import frontier

    train_split, scored = splits(s["data"], s["stage"])
    model, examples, seconds = trained(s, train_split, folder)
    if s["stage"] == "dev":
        out = {}
        for label in ("as-trained", "rerotated"):
            if label == "rerotated":  # a second rotation, onto the fine-tuned model's axes
                rotate_onto_training_documents(model, examples)
            res = frontier(model, scored, [CHOICE_DIMS], ["fp32"])
            out[label] = res.cells[CHOICE_DIMS]["fp32"]["ndcg@10"]
        return {"ndcg@10_128": out, "train_seconds": round(seconds, 1)}
    if s["rerotate"]:
        rotate_onto_training_documents(model, examples)
    res = frontier(model, scored, DIMS, PRECISIONS)
    cells = {
        str(d): {p: {"ndcg@10": c["ndcg@10"], "index_bytes": c["index_bytes"]} for p, c in row.items()}
        for d, row in res.cells.items()
    }
    return {"cells": cells, "per_query": res.per_query, "train_seconds": round(seconds, 1)}


def choose(cache: RunCache, datasets: list[str], steps: int) -> dict:
    """Each candidate's terms trained once a dataset (seed 42), scored on dev queries at 128
    dimensions as trained and rotated again; the best mean over the datasets wins."""
    scores: dict[str, list[float]] = {}
    for data in datasets:
        for name, terms in CANDIDATES.items():
            s = settings(data, "matryoshka", steps, SEED, {"terms": terms}, stage="dev")
            got = cache.run(s, lambda folder, s=s: run_one(s, folder))["ndcg@10_128"]
            for label, value in got.items():
                scores.setdefault(f"{name}/{label}", []).append(value)
            print("choose", data, name, got, flush=True)
    best = max(scores, key=lambda k: np.mean(scores[k]))  # max keeps the first of equal means
    name, label = best.split("/")
    return {
        "on": "stdlib-code dev queries; SciFact train queries held out (seed 42, fp32, 128 dimensions)",
        "ndcg@10": {k: dict(zip(datasets, v)) for k, v in scores.items()},
        "chosen": best,
        "recipe": {"terms": CANDIDATES[name], "rerotate": label == "rerotated"},
    }


def seed_matrix(runs: list[dict], cell: str) -> tuple[list[str], np.ndarray]:
    qids = sorted(runs[0]["per_query"][cell])
    return qids, np.array([[r["per_query"][cell][q] for q in qids] for r in runs])


def summarise(runs: list[dict]) -> dict:
    """One system's cells over seeds: mean and per-seed nDCG@10, index bytes, and the seed-aware p
    of each cell minus the same seed's full size at fp32."""
    from rankwise.metrics.significance import two_level_bootstrap

    full = f"{max(DIMS)}/fp32"
    _, base = seed_matrix(runs, full)
    out: dict = {}
    for dims in map(str, DIMS):
        for prec in PRECISIONS:
            _, values = seed_matrix(runs, f"{dims}/{prec}")
            p = 1.0 if f"{dims}/{prec}" == full else two_level_bootstrap(values - base, np.zeros((1, base.shape[1])))[2]
            out.setdefault(dims, {})[prec] = {
                "ndcg@10": float(values.mean()),
                "seeds": values.mean(axis=1).tolist(),
                "index_bytes": runs[0]["cells"][dims][prec]["index_bytes"],
                "p": p,
            }
    return out


def holm_table(systems: dict) -> None:
    from rankwise.metrics.significance import holm

    cells = [c for cells in systems.values() for row in cells.values() for c in row.values() if c["p"] != 1.0]
    for c, adjusted in zip(cells, holm([c["p"] for c in cells])):
        c["p_holm"] = adjusted


def bar(runs: dict) -> dict:
    """The Matryoshka model at 128 dimensions minus the plain model at 384 (fp32), in points."""
    from rankwise.metrics.significance import two_level_bootstrap

    _, m = seed_matrix(runs["matryoshka"], f"{CHOICE_DIMS}/fp32")
    _, p = seed_matrix(runs["plain"], f"{max(DIMS)}/fp32")
    diff, (lo, hi), pval = two_level_bootstrap(m, p)
    return {"points": 100 * diff, "ci_points": [100 * lo, 100 * hi], "p_seed_aware": pval}


def markdown(result: dict) -> str:
    """benchmarks/README's tables, one a dataset, from a results file: fp32 / int8 / binary nDCG@10
    with p against the same model at full size and fp32 in brackets, index MB (10^6 bytes), then
    the bar's difference where the file has it."""
    out = []
    for data, systems in result["datasets"].items():
        out += [
            f"{data}:",
            "",
            "| model | dims | fp32 nDCG@10 (p) | int8 nDCG@10 (p) | binary nDCG@10 (p) | index MB fp32 / int8 / binary |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        full = str(max(int(d) for d in next(iter(systems.values()))))
        for system, cells in systems.items():
            for dims, row in cells.items():
                shown = [
                    f"{row[p]['ndcg@10']:.4f}" + ("" if (dims, p) == (full, "fp32") else f" ({row[p]['p']:.2g})")
                    for p in PRECISIONS
                ]
                size = " / ".join(f"{row[p]['index_bytes'] / 1e6:.2f}" for p in PRECISIONS)
                out.append(f"| {system} | {dims} | {' | '.join(shown)} | {size} |")
        if data in result.get("bar", {}):
            b = result["bar"][data]
            lo, hi = b["ci_points"]
            out += [
                "",
                f"Matryoshka at 128 minus plain at 384 (fp32): {b['points']:+.2f} points [{lo:+.2f}, {hi:+.2f}], p {b['p_seed_aware']:.2g}",
            ]
        out.append("")
    return "\n".join(out)


def measure(cache: RunCache, data: str, recipe: dict, steps: int, seeds: tuple[int, ...]) -> tuple[dict, dict, dict]:
    """Both systems on one dataset, alternating seed by seed: (cells, bar, train seconds)."""
    runs: dict[str, list[dict]] = {system: [] for system in SYSTEMS}
    for seed in seeds:
        for system in SYSTEMS:
            s = settings(data, system, steps, seed, recipe)
            got = cache.run(s, lambda folder, s=s: run_one(s, folder))
            runs[system].append(got)
            print(data, system, seed, {d: c["fp32"]["ndcg@10"] for d, c in got["cells"].items()}, flush=True)
    cells = {system: summarise(r) for system, r in runs.items()}
    holm_table(cells)
    return cells, bar(runs), {system: [r["train_seconds"] for r in rs] for system, rs in runs.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=90)
    ap.add_argument("--datasets", default="stdlib-code,scifact")
    ap.add_argument("--seeds", type=int, default=len(SEEDS))
    ap.add_argument("--table", action="store_true", help="print the README tables from the results file and stop")
    args = ap.parse_args()
    if args.table:
        print(markdown(json.loads(OUT.read_text())))
        return
    cache = RunCache("frontier", keep=RUNS / "frontier")
    names, seeds = args.datasets.split(","), SEEDS[: args.seeds]
    selection = choose(cache, names, args.steps)
    result: dict = {"datasets": {}, "bar": {}, "train_seconds": {}}
    for data in names:
        cells, b, seconds = measure(cache, data, selection["recipe"], args.steps, seeds)
        result["datasets"][data], result["bar"][data], result["train_seconds"][data] = cells, b, seconds
    shown = settings("stdlib-code", "matryoshka", args.steps, SEED, selection["recipe"])
    shown = {k: v for k, v in shown.items() if k not in ("data", "system", "seed", "stage")}
    shown |= {"seeds": list(seeds), "selection": selection}
    write_result(OUT, {"machine": machine(), "settings": shown, **result}, PEERS)


if __name__ == "__main__":
    main()

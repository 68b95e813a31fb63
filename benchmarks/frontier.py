"""The cost-quality frontier: a Matryoshka-trained dual encoder against a plainly trained one, at
64/128/256/384 dimensions x fp32/int8/binary embeddings.

For each dataset (stdlib-code, SciFact), both models start from all-MiniLM-L6-v2 and train on the
train qrels' (query, positive) pairs with the same recipe (InfoNCE at temperature 0.05, in-batch
negatives, ``--steps`` steps of 32, lr 1e-4, queries 32 and documents 128 tokens (256 for SciFact),
seed 42); the Matryoshka model adds ``matryoshka:dims=64/128/256`` (weights 1) and starts from the
encoder rotated onto the principal axes of its training documents' embeddings (``principal_axes``:
an orthogonal map, so the full vector's cosines do not change, while a 128-dimension prefix keeps
far more: zero-shot nDCG@10 at 128 dimensions 0.574 -> 0.637 on stdlib-code's dev split, 0.592 ->
0.629 on SciFact's train queries, against 0.650 and 0.658 at 384; measured before any training, on
no test query). ``matryoshka-unrotated`` is the same without the rotation (the recipe of the
2026-12-06 run: 4.2 and 3.3 points below the plain model at 384). Each is then scored
on the test split by ``rankwise.metrics.frontier.frontier``: exact search over every cell's stored
codes, nDCG@10, Recall@100, index bytes, per-query latency, and a paired t-test of nDCG@10 against
the same model at 384 dimensions and fp32 (``p``; ``p_holm`` Holm-corrected over the table).
Nothing is tuned: the recipe is the one the loss comparison uses.

    python benchmarks/frontier.py [--steps 90] [--datasets stdlib-code,scifact]
    python benchmarks/frontier.py --table   # the README tables from benchmarks/results/frontier.json

Trained models are kept in the run cache keyed by settings and code (``benchmarks/runs/frontier/``
holds the finished cells, so a later session reuses them). Writes benchmarks/results/frontier.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: benchmarks is a package
from benchmarks._cache import RunCache  # noqa: E402
from benchmarks._machine import machine, write_result  # noqa: E402
from benchmarks.settings import RESULTS, RUNS, SCIFACT, SEED  # noqa: E402

OUT = RESULTS / "frontier.json"
PEERS = ()
DIMS, PRECISIONS = (64, 128, 256, 384), ("fp32", "int8", "binary")
MATRYOSHKA = "matryoshka:dims=64/128/256"
SYSTEMS = {  # name: (embedding_terms, principal_axes)
    "plain": (None, False),
    "matryoshka": (MATRYOSHKA, True),  # rankwise's recipe: prefixes that already work, then trained
    "matryoshka-unrotated": (MATRYOSHKA, False),
}


def dataset(name: str, split: str):
    from rankwise.data import load_beir
    from rankwise.data.stdlib_code import ensure_built

    return load_beir(ensure_built() if name == "stdlib-code" else SCIFACT, split).own_split()


def settings(data: str, system: str, steps: int) -> dict:
    return {
        "data": data,
        "system": system,
        "steps": steps,
        "loss": "infonce:temperature=0.05",
        "batch_size": 32,
        "lr": 1e-4,
        "query_max_length": 32,
        "doc_max_length": 128 if data == "stdlib-code" else 256,
        "seed": SEED,
        "embedding_terms": SYSTEMS[system][0],
        "principal_axes": SYSTEMS[system][1],
        "dims": list(DIMS),
        "precisions": list(PRECISIONS),
    }


def run_one(s: dict, folder: Path) -> dict:
    """Train one system on one dataset, then measure every cell of its frontier on test."""
    from rankwise.data import examples_from_qrels
    from rankwise.metrics.frontier import frontier
    from rankwise.models import BiEncoder
    from rankwise.training import TrainConfig, train

    model = BiEncoder.load(query_max_length=s["query_max_length"], doc_max_length=s["doc_max_length"])
    keys = ("loss", "batch_size", "lr", "query_max_length", "doc_max_length", "seed", "embedding_terms", "steps")
    keys += ("principal_axes",)
    cfg = TrainConfig(**{k: s[k] for k in keys}, checkpoint_every=10_000)
    result = train(model, examples_from_qrels(dataset(s["data"], "train")), cfg, folder / "train")
    res = frontier(model, dataset(s["data"], "test"), DIMS, PRECISIONS)
    return {"cells": {str(d): row for d, row in res.cells.items()}, "train_seconds": round(result.seconds, 1)}


def markdown(result: dict) -> str:
    """benchmarks/README's tables, one a dataset, from a results file: fp32 / int8 / binary nDCG@10
    with p against the same model at full size and fp32 in brackets, index MB (10^6 bytes)."""
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
        out.append("")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=90)
    ap.add_argument("--datasets", default="stdlib-code,scifact")
    ap.add_argument("--table", action="store_true", help="print the README tables from the results file and stop")
    args = ap.parse_args()
    if args.table:
        print(markdown(json.loads(OUT.read_text())))
        return
    cache = RunCache("frontier", keep=RUNS / "frontier")
    datasets: dict = {}
    seconds: dict = {}
    for data in args.datasets.split(","):
        for system in SYSTEMS:
            s = settings(data, system, args.steps)
            got = cache.run(s, lambda folder, s=s: run_one(s, folder))
            datasets.setdefault(data, {})[system] = got["cells"]
            seconds.setdefault(data, {})[system] = got["train_seconds"]
            print(data, system, {d: c["fp32"]["ndcg@10"] for d, c in got["cells"].items()}, flush=True)
    summary = {  # the bar: Matryoshka at 128 dimensions against the plain model at full size, in points
        data: 100 * (systems["matryoshka"]["128"]["fp32"]["ndcg@10"] - systems["plain"]["384"]["fp32"]["ndcg@10"])
        for data, systems in datasets.items()
        if {"plain", "matryoshka"} <= set(systems)
    }
    unrotated = {  # the same without the rotation (the 2026-12-06 recipe)
        data: 100 * (s["matryoshka-unrotated"]["128"]["fp32"]["ndcg@10"] - s["plain"]["384"]["fp32"]["ndcg@10"])
        for data, s in datasets.items()
        if {"plain", "matryoshka-unrotated"} <= set(s)
    }
    shown = {k: v for k, v in settings("stdlib-code", "matryoshka", args.steps).items() if k not in ("data", "system")}
    result = {"machine": machine(), "settings": shown, "datasets": datasets, "train_seconds": seconds}
    result |= {"matryoshka_128_minus_plain_384_points": summary}
    write_result(OUT, result | {"matryoshka_unrotated_128_minus_plain_384_points": unrotated}, PEERS)


if __name__ == "__main__":
    main()

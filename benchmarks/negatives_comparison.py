"""Fine-tune the default model on stdlib-code with each negative / batching recipe, everything
else equal (InfoNCE tau 0.05, 90 steps of batch 32, lr 1e-4, query/doc 32/128 tokens, seed 42,
one hard negative per query per step where a recipe has them).

Recipes (options chosen on dev, see README): in-batch only; BM25 static; dense static (the
default model's own top-ranked documents); STAR (BM25 static + one random corpus document per
query); dynamic (ADORE-style re-mining with the current model every 30 steps); TAS-Balanced
batches (k-means topic clusters, in-batch negatives only, to isolate the batching); NGAME
batches (re-clustered every 30 steps, in-batch only); and best+fn: the best recipe on dev plus
false-negative control (mining's margin guard and self-confidence down-weighting).

Reported: nDCG@10 and Recall@100 on stdlib-code test (and dev), zero-shot nDCG@10 on
../shared/data/trec-dl-5k. Results go to benchmarks/results/negatives_comparison.json after
each recipe; a re-run skips recipes already done with the same settings.

    python benchmarks/negatives_comparison.py [--recipes in-batch,bm25,...] [--steps 90]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: benchmarks is a package
from benchmarks._cache import code_in_use, same_code  # noqa: E402
from benchmarks._machine import machine, write_result  # noqa: E402
from benchmarks.loss_comparison import measure  # noqa: E402
from benchmarks.settings import REPO, SEED, STDLIB_TRAIN, TREC_DL  # noqa: E402
from rankwise.data import examples_from_qrels, load_beir  # noqa: E402
from rankwise.data.stdlib_code import ensure_built  # noqa: E402
from rankwise.models import BiEncoder  # noqa: E402
from rankwise.training import TrainConfig, train  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "negatives_comparison.json"
PEERS = ()  # libraries besides torch/transformers/sentence-transformers whose figures it reports
WINDOW = "window=1-30,k=7"
RECIPES = {
    "in-batch": {"negatives": "inbatch"},
    "bm25": {"negatives": f"bm25:{WINDOW},code=true"},
    "dense": {"negatives": f"dense:{WINDOW},max_length=128"},
    "star": {"negatives": f"star:source=bm25,random=1,{WINDOW},code=true"},
    "dynamic": {"negatives": f"dynamic:every=30,{WINDOW},max_length=128"},
    "tas": {"negatives": "inbatch", "batching": "tas:clusters=88"},
    "ngame": {"negatives": "inbatch", "batching": "ngame:every=30,cluster_size=8"},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=90)
    ap.add_argument("--recipes", default=",".join(RECIPES) + ",best+fn")
    args = ap.parse_args()
    data = ensure_built()
    train_ds = load_beir(data, "train").own_split()
    dev, test = load_beir(data, "dev").own_split(), load_beir(data, "test").own_split()
    trec = load_beir(TREC_DL, "test") if TREC_DL.is_dir() else None
    base_cfg = {
        "loss": "infonce:temperature=0.05",
        "steps": args.steps,
        **STDLIB_TRAIN,
        "seed": SEED,
    }
    settings = base_cfg | {"recipes": RECIPES, "fn": "mining margin guard 0.0 absolute + self:tau=0.05"}
    result = json.loads(OUT.read_text()) if OUT.is_file() else {}
    if result.get("settings") != settings:
        result = {"settings": settings, "runs": []}
    result["machine"] = machine()
    # a row is reused only on the code it ran on (this script, rankwise modules, library versions)
    result["runs"] = [r for r in result["runs"] if r.get("code") and same_code(r["code"])]
    done = {r["recipe"] for r in result["runs"]}
    for name in args.recipes.split(","):
        if name in done:
            continue
        if name == "best+fn":
            ranked = sorted((r for r in result["runs"] if r["recipe"] != "in-batch"), key=lambda r: -r["dev ndcg@10"])
            if not ranked:
                continue
            best = ranked[0]["recipe"]
            options = dict(RECIPES[best])
            if options["negatives"].split(":")[0] in ("bm25", "dense", "star", "dynamic"):
                options["negatives"] += ",margin=0.0"  # drop candidates the retriever scores above the positive
                options["false_negatives"] = "self:tau=0.05"
            else:  # a batching recipe: add BM25 negatives so there are hard negatives to control
                options["negatives"] = f"bm25:{WINDOW},code=true,margin=0.0"
                options["false_negatives"] = "self:tau=0.05"
            options["based_on"] = best
        else:
            options = dict(RECIPES[name])
        cfg = TrainConfig(**base_cfg, checkpoint_every=10_000, **{k: v for k, v in options.items() if k != "based_on"})
        out = Path("/tmp") / f"rankwise-negcmp-{name}"
        shutil.rmtree(out, ignore_errors=True)
        model = BiEncoder.load()
        examples = examples_from_qrels(train_ds)
        t0 = time.perf_counter()
        res = train(model, examples, cfg, out, corpus=train_ds, log=lambda m: print(m, flush=True))
        row = {
            "recipe": name,
            "options": options,
            "train_seconds": round(time.perf_counter() - t0, 1),
            "final_loss": res.history[-1].loss,
        }
        row.update(measure(model, dev, test, trec, k=100))
        row["code"] = code_in_use()
        result["runs"].append(row)
        write_result(OUT, result, PEERS)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()

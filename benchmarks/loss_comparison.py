"""Fine-tune the default model on stdlib-code with several losses, everything else equal.

Same data (stdlib-code train, in-batch negatives), steps, batch, learning rate, lengths and
seed for every loss; scores are cosine similarities and every loss gets the same scale
(temperature 0.05, or sigma/alpha 20) except MW, which uses its paper's tau = 0.01.
Reported: nDCG@10, Recall@100 and AUC on stdlib-code dev and test (each split searched over its
own modules), and zero-shot nDCG@10 on ../shared/data/trec-dl-5k.

    python benchmarks/loss_comparison.py [--steps 90] [--losses infonce,mw,...]

Results go to benchmarks/results/loss_comparison.json after each loss, so an interrupted run
keeps what it finished and a re-run skips losses already done with the same settings.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: benchmarks is a package
from benchmarks._cache import code_in_use, same_code  # noqa: E402
from benchmarks._machine import machine, write_result  # noqa: E402
from benchmarks.settings import REPO, SEED, STDLIB_TRAIN, TREC_DL  # noqa: E402
from rankwise.data import examples_from_qrels, load_beir  # noqa: E402
from rankwise.data.stdlib_code import ensure_built  # noqa: E402
from rankwise.index.retrieve import dense_run  # noqa: E402
from rankwise.metrics import evaluate  # noqa: E402
from rankwise.metrics.auc import global_auc, per_query_auc  # noqa: E402
from rankwise.models import BiEncoder  # noqa: E402
from rankwise.training import TrainConfig, train  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "loss_comparison.json"
PEERS = ()  # libraries besides torch/transformers/sentence-transformers whose figures it reports
SPECS = {
    "infonce": "infonce:temperature=0.05",
    "mw": "mw:temperature=0.01",
    "ranknet": "ranknet:sigma=20",
    "listnet": "listnet:temperature=0.05",
    "lambdaloss": "lambdaloss:ndcg2pp,sigma=20",
    "approxndcg": "approxndcg:alpha=20",
}


def scores_of(model: BiEncoder, ds, k: int, max_length: int) -> dict:
    model.config.query_max_length = model.config.doc_max_length = max_length
    run = dense_run(model, ds, k, show_progress=False)
    m = evaluate(ds.qrels, run, ["ndcg@10", "recall@100"])
    pq = per_query_auc(ds.qrels, run)
    m["auc"] = float(np.mean(list(pq.values())))
    m["global_auc"] = global_auc(ds.qrels, run)
    return m


def measure(model: BiEncoder, dev, test, trec, k: int = 500) -> dict:
    """Test and dev nDCG@10, Recall@100 and AUC (top-k retrieved), and zero-shot trec-dl-5k nDCG@10."""
    dev_m, test_m = scores_of(model, dev, k, 128), scores_of(model, test, k, 128)
    row = {
        "ndcg@10": test_m["ndcg@10"],
        "recall@100": test_m["recall@100"],
        "auc": test_m["auc"],
        "global_auc": test_m["global_auc"],
        "dev ndcg@10": dev_m["ndcg@10"],
        "dev recall@100": dev_m["recall@100"],
        "dev auc": dev_m["auc"],
    }
    if trec is not None:
        row["trec-dl-5k ndcg@10"] = scores_of(model, trec, 100, 256)["ndcg@10"]
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=90)
    ap.add_argument("--losses", default=",".join(SPECS))
    args = ap.parse_args()
    data = ensure_built()
    examples = examples_from_qrels(load_beir(data, "train"))
    dev, test = load_beir(data, "dev").own_split(), load_beir(data, "test").own_split()
    trec = load_beir(TREC_DL, "test") if TREC_DL.is_dir() else None
    settings = {
        "steps": args.steps,
        **STDLIB_TRAIN,
        "seed": SEED,
        "negatives": "in-batch",
        "auc_negatives": "top-500 retrieved non-relevant per query",
    }
    result = json.loads(OUT.read_text()) if OUT.is_file() else {}
    if result.get("settings") != settings:
        result = {"settings": settings, "runs": []}
    result["machine"] = machine()
    if not same_code(result.get("base", {}).get("code") or {"script:missing": ""}):  # the untrained model
        base = BiEncoder.load()
        dev_m, test_m = scores_of(base, dev, 500, 128), scores_of(base, test, 500, 128)
        result["base"] = {
            "ndcg@10": test_m["ndcg@10"],
            "recall@100": test_m["recall@100"],
            "auc": test_m["auc"],
            "global_auc": test_m["global_auc"],
            "dev ndcg@10": dev_m["ndcg@10"],
            "dev auc": dev_m["auc"],
        }
        if trec is not None:
            result["base"]["trec-dl-5k ndcg@10"] = scores_of(base, trec, 100, 256)["ndcg@10"]
        result["base"]["code"] = code_in_use()
        write_result(OUT, result, PEERS)
    # a row is reused only on the code it ran on (this script, rankwise modules, library versions)
    result["runs"] = [r for r in result["runs"] if r.get("code") and same_code(r["code"])]
    done = {r["loss"] for r in result["runs"]}
    for name in args.losses.split(","):
        if name in done:
            continue
        spec = SPECS.get(name, name)
        cfg = TrainConfig(
            loss=spec,
            steps=args.steps,
            **STDLIB_TRAIN,
            seed=SEED,
            checkpoint_every=10_000,
        )
        model = BiEncoder.load()
        t0 = time.perf_counter()
        res = train(model, examples, cfg, Path("/tmp") / f"rankwise-losscmp-{name}")
        row = {
            "loss": name,
            "spec": spec,
            "train_seconds": round(time.perf_counter() - t0, 1),
            "final_loss": res.history[-1].loss,
        }
        row.update(measure(model, dev, test, trec))
        row["code"] = code_in_use()
        result["runs"].append(row)
        write_result(OUT, result, PEERS)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()

"""Training throughput and memory: rankwise against sentence-transformers' SentenceTransformerTrainer
on the same work.

Work: the default model (all-MiniLM-L6-v2) fine-tuned for ``--steps`` steps of 32 (query,
positive, hard negative) triplets from stdlib-code train (BM25 negatives: the top-ranked
non-positive document of ranks 1-30, mined once by `rankwise mine`), queries and documents cut
at 256 tokens, cosine similarity with scale 20 (InfoNCE temperature 0.05 / MNRL scale 20),
AdamW lr 1e-4, weight decay 0.01, 10 % linear warm-up then linear decay, gradient clipping at
1.0, float32. Both sides see the same batches: rankwise draws them with its no-duplicates
sampler (no document twice in a batch, as sentence-transformers recommends for MNRL) and the
peer replays them through a batch sampler. tests/training/test_peer_equivalence.py checks that,
without dropout, the two then compute the same loss at every step.

Each side runs in its own process, so peak resident memory (ru_maxrss, read right after
training) is its own; examples/s is 32 x steps over the training loop's wall time. After
training, both models are evaluated the same way (rankwise's evaluator, 256 tokens) on
stdlib-code dev. One run per seed and side (``--seeds``, default two); dropout draws differ
between the sides, so quality is compared as the mean over seeds, next to the spread between
seeds. ``--bf16`` adds a bf16-autocast run of rankwise at the first seed (speed and quality effect).

    python benchmarks/train_throughput.py [--steps 60] [--seeds 42,43] [--bf16]

Each finished run is kept in results/train_throughput.partial.json (git-ignored), and a rerun with
the same settings on the same CPU reuses it (an interrupted benchmark resumes; ``--bf16`` later
adds only its run); delete that file to measure everything afresh.

Writes benchmarks/results/train_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: benchmarks is a package

RESULTS = Path(__file__).resolve().parent / "results" / "train_throughput.json"
PEERS = ()  # libraries besides torch/transformers/sentence-transformers whose figures it reports
PARTIAL = RESULTS.with_suffix(".partial.json")
BATCH, MAX_LEN, LR, SEED = 32, 256, 1e-4, 42
CHUNK_TOKENS = 4096


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def triplets(path: Path) -> None:
    """Mine BM25 negatives for stdlib-code train and write (query, positive, negative) text triplets."""
    from rankwise.data import load_beir
    from rankwise.data.stdlib_code import ensure_built
    from rankwise.negatives.mining import MineOptions, mine

    ds = load_beir(ensure_built(), "train").own_split()
    mined = path.with_suffix(".mined.jsonl")
    mine(
        ds,
        MineOptions(method="bm25", k=1, window=(1, 30), code=True),
        mined,
        show_progress=False,
        log_fn=lambda _: None,
    )
    with open(path, "w", encoding="utf-8") as fh:
        for row in map(json.loads, mined.read_text().splitlines()):
            if row["negative_ids"]:
                fh.write(
                    json.dumps(
                        {
                            "query": ds.queries[row["query_id"]],
                            "positives": [ds.corpus[row["positive_ids"][0]].full_text],
                            "negatives": [ds.corpus[row["negative_ids"][0]].full_text],
                        }
                    )
                    + "\n"
                )


def dev_ndcg(model_dir: str) -> float:
    from rankwise.data import load_beir
    from rankwise.data.stdlib_code import ensure_built
    from rankwise.metrics.model import evaluate_model
    from rankwise.models import BiEncoder

    model = BiEncoder.load(model_dir, query_max_length=MAX_LEN, doc_max_length=MAX_LEN)
    return evaluate_model(model, load_beir(ensure_built(), "dev").own_split(), show_progress=False).metrics["ndcg@10"]


def rankwise_config(steps: int, seed: int, bf16: bool = False, checkpointing: bool = False):
    from rankwise.training import TrainConfig

    return TrainConfig(
        steps=steps,
        batch_size=BATCH,
        lr=LR,
        warmup_ratio=0.1,
        weight_decay=0.01,
        max_grad_norm=1.0,
        seed=seed,
        query_max_length=MAX_LEN,
        doc_max_length=MAX_LEN,
        negatives="file",
        negatives_per_query=1,
        chunk_tokens=CHUNK_TOKENS,
        bf16=bf16,
        activation_checkpointing=checkpointing,
        batching="nodup",
        checkpoint_every=10**9,
        loss="infonce:temperature=0.05",
    )


def batch_indices(data: Path, steps: int, seed: int) -> list[list[int]]:
    """The example indices of each of rankwise's batches, for the peer to replay."""
    from rankwise.data import load_examples
    from rankwise.training import interop

    return interop.batch_indices(rankwise_config(steps, seed), load_examples(data))


def side_rankwise(args, out: Path) -> dict:
    import torch

    from rankwise.data import load_examples
    from rankwise.models import BiEncoder
    from rankwise.training import train

    torch.manual_seed(args.seed)
    examples = load_examples(args.data)
    model = BiEncoder.load(None)
    cfg = rankwise_config(args.steps, args.seed, args.bf16, args.checkpointing)
    t0 = time.perf_counter()
    res = train(model, examples, cfg, out / "run")
    seconds = time.perf_counter() - t0
    peak = peak_rss_mb()
    model.save(out / "model")
    hist = res.history
    return {
        "seconds": seconds,
        "examples_per_s": args.steps * BATCH / seconds,
        "peak_rss_mb": peak,
        "padding": sum(h.padding for h in hist) / len(hist),
        "tokens_per_s": sum(h.tokens_per_s for h in hist) / len(hist),
        "final_loss": hist[-1].loss,
        "model": str(out / "model"),
    }


def side_peer(args, out: Path) -> dict:
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )

    try:  # sentence-transformers >= 6 layout
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    except ImportError:
        from sentence_transformers.losses import MultipleNegativesRankingLoss

    from rankwise.models import default_model_path
    from rankwise.training.interop import ReplayBatches

    rows = [json.loads(x) for x in Path(args.data).read_text().splitlines()]
    ds = Dataset.from_dict(
        {
            "anchor": [r["query"] for r in rows],
            "positive": [r["positives"][0] for r in rows],
            "negative": [r["negatives"][0] for r in rows],
        }
    )
    model = SentenceTransformer(str(default_model_path()), device="cpu")
    model.max_seq_length = MAX_LEN
    batches = json.loads(Path(args.batches).read_text())
    targs = SentenceTransformerTrainingArguments(
        output_dir=str(out / "st"),
        max_steps=args.steps,
        per_device_train_batch_size=BATCH,
        learning_rate=LR,
        warmup_ratio=0.1,
        lr_scheduler_type="linear",
        weight_decay=0.01,
        max_grad_norm=1.0,
        seed=args.seed,
        data_seed=args.seed,
        save_strategy="no",
        report_to=[],
        logging_steps=max(1, args.steps // 10),
        use_cpu=True,
        bf16=args.bf16,
        batch_sampler=ReplayBatches(batches),
    )
    trainer = SentenceTransformerTrainer(
        model=model, args=targs, train_dataset=ds, loss=MultipleNegativesRankingLoss(model, scale=20.0)
    )
    t0 = time.perf_counter()
    out_metrics = trainer.train()
    seconds = time.perf_counter() - t0
    peak = peak_rss_mb()
    model.save(str(out / "model"))
    return {
        "seconds": seconds,
        "examples_per_s": args.steps * BATCH / seconds,
        "peak_rss_mb": peak,
        "mean_loss": out_metrics.training_loss,
        "model": str(out / "model"),
    }


def child(args) -> None:
    out = Path(args.workdir) / f"{args.side}-{args.seed}{'-bf16' if args.bf16 else ''}"
    out.mkdir(parents=True, exist_ok=True)
    res = (side_rankwise if args.side == "rankwise" else side_peer)(args, out)
    res["dev_ndcg@10"] = dev_ndcg(res.pop("model"))
    print("RESULT " + json.dumps(res), flush=True)


def run_child(side: str, args, workdir: Path, data: Path, seed: int, bf16: bool = False) -> dict:
    batches = workdir / f"batches-{seed}.json"
    if not batches.exists():
        batches.write_text(json.dumps(batch_indices(data, args.steps, seed)))
    cmd = [
        sys.executable,
        __file__,
        "--side",
        side,
        "--data",
        str(data),
        "--steps",
        str(args.steps),
        "--workdir",
        str(workdir),
        "--seed",
        str(seed),
        "--batches",
        str(batches),
    ]
    cmd += ["--bf16"] * bf16 + ["--checkpointing"] * args.checkpointing
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, TOKENIZERS_PARALLELISM="false"))
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"{side} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    res = json.loads(line[len("RESULT ") :]) | {"seed": seed}
    print(
        f"{side}{' bf16' if bf16 else ''} seed {seed}: {res['examples_per_s']:.2f} examples/s, peak {res['peak_rss_mb']:.0f} MB, "
        f"dev nDCG@10 {res['dev_ndcg@10']:.4f}",
        flush=True,
    )
    return res


def summary(runs: list[dict]) -> dict:
    """Speed and quality as means over seeds, memory as the largest peak; the runs themselves kept."""
    import statistics

    nd = [r["dev_ndcg@10"] for r in runs]
    return {
        "examples_per_s": statistics.mean(r["examples_per_s"] for r in runs),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "dev_ndcg@10": statistics.mean(nd),
        "dev_ndcg@10_sd": statistics.stdev(nd) if len(nd) > 1 else 0.0,
        "runs": runs,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--seeds", default="42,43", help="comma-separated; one run of each side per seed")
    ap.add_argument(
        "--bf16",
        action="store_true",
        help="also run rankwise with bf16 autocast (first seed): its speed and quality effect",
    )
    ap.add_argument("--checkpointing", action="store_true", help="rankwise with activation checkpointing")
    ap.add_argument("--side", choices=["rankwise", "peer"], help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--batches", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.side:
        return child(args)
    from benchmarks._machine import machine, write_result
    from rankwise.io import write_json

    seeds = [int(x) for x in args.seeds.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "triplets.jsonl"
        triplets(data)
        n = len(data.read_text().splitlines())
        print(f"{n} triplets; {args.steps} steps of {BATCH}; seeds {seeds}", flush=True)
        result = {
            "machine": machine(),
            "steps": args.steps,
            "batch_size": BATCH,
            "max_length": MAX_LEN,
            "triplets": n,
            "seeds": seeds,
            "data": "stdlib-code train, BM25 negative (top non-positive of ranks 1-30)",
            "batches": "rankwise's no-duplicates sampler; the peer replays the same batches",
            "rankwise_settings": {
                "chunk_tokens": CHUNK_TOKENS,
                "activation_checkpointing": args.checkpointing,
                "loss": "infonce:temperature=0.05",
            },
            "peer_settings": "SentenceTransformerTrainer + MultipleNegativesRankingLoss(scale=20)",
        }
        # each finished run is kept in PARTIAL (git-ignored) at once: an interrupted benchmark resumes where it
        # stopped, and a later --bf16 run reuses the float32 runs
        key = json.dumps(
            {k: result[k] for k in ("steps", "batch_size", "max_length", "triplets", "rankwise_settings")}
            | {"cpu": result["machine"]["cpu"]},
            sort_keys=True,
        )
        done = json.loads(PARTIAL.read_text()) if PARTIAL.is_file() else {}
        done = done if done.get("key") == key else {"key": key, "runs": {}}

        def run(side: str, seed: int, bf16: bool = False) -> dict:
            name = f"{side}-{seed}{'-bf16' if bf16 else ''}"
            if name not in done["runs"]:
                done["runs"][name] = run_child(side, args, work, data, seed, bf16)
                write_json(PARTIAL, done)
            else:
                print(f"{name}: kept from {PARTIAL.name}", flush=True)
            return done["runs"][name]

        runs: dict[str, list[dict]] = {"rankwise": [], "peer": []}
        for seed in seeds:  # interleaved, so a slow phase of the machine hits both sides
            for side in runs:
                runs[side].append(run(side, seed))
        result["rankwise"], result["peer"] = summary(runs["rankwise"]), summary(runs["peer"])
        if args.bf16:
            result["rankwise_bf16"] = run("rankwise", seeds[0], bf16=True)
        r, p = result["rankwise"], result["peer"]
        result["speedup"] = r["examples_per_s"] / p["examples_per_s"]
        result["memory_ratio"] = r["peak_rss_mb"] / p["peak_rss_mb"]
        result["dev_ndcg_points_apart"] = 100 * abs(r["dev_ndcg@10"] - p["dev_ndcg@10"])
        write_result(RESULTS, result, PEERS)
        print(
            f"speed-up {result['speedup']:.2f}x, memory {result['memory_ratio']:.2f}x, mean dev nDCG@10 "
            f"{result['dev_ndcg_points_apart']:.2f} points apart (rankwise {r['dev_ndcg@10']:.4f} sd {r['dev_ndcg@10_sd']:.4f}, "
            f"peer {p['dev_ndcg@10']:.4f} sd {p['dev_ndcg@10_sd']:.4f}); wrote {RESULTS}"
        )


if __name__ == "__main__":
    main()

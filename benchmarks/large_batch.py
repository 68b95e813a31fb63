"""Training steps at batch 1,024: rankwise's gradient caching, its plain computation (at 1,024,
and at 256 where it fits, for its speed), and sentence-transformers' gradient-cached loss
(``CachedMultipleNegativesRankingLoss``, mini-batches of the same size as rankwise's chunks) on the
same batches: the default model on stdlib-code train pairs (in-batch InfoNCE / MNRL at scale 20,
1,024 queries against 1,024 positives a step), queries 32 and functions 64 tokens. Each side runs
in its own process under the same address-space limit (``--memory-limit-gb``), so a side that
cannot fit fails with an error instead of swapping the machine. Peak resident memory and seconds
per step (the training call's wall time over its steps) are measured in the child process.

    python benchmarks/large_batch.py [--steps 2] [--cache-chunk 64] [--memory-limit-gb 12]

Writes benchmarks/results/large_batch.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: benchmarks is a package
from benchmarks._machine import machine, write_result  # noqa: E402
from benchmarks._memory import peak_rss_mb  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "large_batch.json"
PEERS = ()  # libraries besides torch/transformers/sentence-transformers whose figures it reports
BATCH = 1024
PLAIN_FITS = 256  # the plain computation's batch that fits under the limit: its speed per example
SIDES = ("cached", "peer", "plain", "plain-fits")


def examples_and_batches(batch: int, steps: int):
    """stdlib-code train pairs and the batches rankwise draws from them (the peer replays them)."""
    import rankwise as rw
    from rankwise.data import examples_from_qrels
    from rankwise.training import interop

    examples = examples_from_qrels(rw.load_dataset("stdlib-code", "train"))
    return examples, interop.batch_indices(config(batch, steps, None), examples)


def config(batch: int, steps: int, cache_chunk: int | None):
    import rankwise as rw

    return rw.TrainConfig(
        steps=steps,
        batch_size=batch,
        lr=1e-5,
        query_max_length=32,
        doc_max_length=64,
        cache_chunk=cache_chunk,
        warmup_ratio=0.0,
        device="cpu",
        batching="nodup",
        checkpoint_every=10**9,
    )


def train_rankwise(batch: int, cache_chunk: int | None, steps: int) -> dict:
    import rankwise as rw

    examples, _ = examples_and_batches(batch, steps)
    model = rw.BiEncoder.load()
    t0 = time.perf_counter()
    res = rw.train(model, examples, config(batch, steps, cache_chunk))
    return {"seconds_per_step": round((time.perf_counter() - t0) / steps, 2), "final_loss": res.history[-1].loss}


def train_peer(batch: int, mini_batch: int, steps: int) -> dict:
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import CachedMultipleNegativesRankingLoss

    from rankwise.models import default_model_path
    from rankwise.training.interop import ReplayBatches

    examples, batches = examples_and_batches(batch, steps)
    data = Dataset.from_dict({"anchor": [e.query for e in examples], "positive": [e.positives[0] for e in examples]})
    model = SentenceTransformer(str(default_model_path()), device="cpu")
    model.max_seq_length = 64  # one limit for both sides in sentence-transformers: the documents'
    args = SentenceTransformerTrainingArguments(
        output_dir=tempfile.mkdtemp(),
        max_steps=steps,
        per_device_train_batch_size=batch,
        learning_rate=1e-5,
        warmup_ratio=0.0,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        batch_sampler=ReplayBatches(batches),
    )
    loss = CachedMultipleNegativesRankingLoss(model, scale=20.0, mini_batch_size=mini_batch)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data, loss=loss)
    t0 = time.perf_counter()
    out = trainer.train()
    return {"seconds_per_step": round((time.perf_counter() - t0) / steps, 2), "mean_loss": out.training_loss}


def side(name: str, args, out: Path) -> None:
    """One side, in this (child) process: train and write what it measured."""
    import resource

    if args.memory_limit_gb:
        limit = int(args.memory_limit_gb * 1024**3)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    result: dict = {"peak_rss_mb": None, "seconds_per_step": None, "error": None}
    try:
        if name == "peer":
            result |= train_peer(BATCH, args.cache_chunk, args.steps)
        else:
            batch = PLAIN_FITS if name == "plain-fits" else BATCH
            result |= train_rankwise(batch, args.cache_chunk if name == "cached" else None, args.steps)
        result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    except (MemoryError, RuntimeError) as exc:  # torch reports allocation failures as RuntimeError
        result["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        result["peak_rss_mb_at_failure"] = round(peak_rss_mb(), 1)
    out.write_text(json.dumps(result))


def run_side(name: str, args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "side.json"
        cmd = [sys.executable, __file__, "--side", name, "--steps", str(args.steps), "--result", str(out)]
        cmd += ["--memory-limit-gb", str(args.memory_limit_gb), "--cache-chunk", str(args.cache_chunk)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=dict(os.environ, TOKENIZERS_PARALLELISM="false"))
        if not out.is_file():  # killed (e.g. by the kernel): no result of its own
            return {"peak_rss_mb": None, "seconds_per_step": None, "error": f"exit code {proc.returncode}"}
        result = json.loads(out.read_text())
        result["wall_s"] = round(time.perf_counter() - t0, 1)
        print(f"{name}: {result}", flush=True)
        return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--cache-chunk", type=int, default=64)
    ap.add_argument("--memory-limit-gb", type=float, default=12.0, help="address-space limit of each side (0: none)")
    ap.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.side:
        return side(args.side, args, Path(args.result))
    sides = {name: run_side(name, args) for name in SIDES}
    result = {
        "machine": machine(),
        "batch_size": BATCH,
        "settings": {
            "steps": args.steps,
            "cache_chunk": args.cache_chunk,
            "memory_limit_gb": args.memory_limit_gb,
            "query_max_length": 32,
            "doc_max_length": 64,
            "loss": "infonce:temperature=0.05",
            "plain_fits_batch": PLAIN_FITS,
        },
        "cached": sides["cached"],
        "plain": sides["plain"],
        "plain_fits": sides["plain-fits"],
        "peer": {"loss": f"CachedMultipleNegativesRankingLoss(scale=20, mini_batch_size={args.cache_chunk})"}
        | sides["peer"],
    }
    cached, peer = sides["cached"], sides["peer"]
    if cached["seconds_per_step"] and peer["seconds_per_step"]:
        result["cached_speedup_over_peer"] = round(peer["seconds_per_step"] / cached["seconds_per_step"], 3)
        result["cached_over_peer_peak_rss"] = round(cached["peak_rss_mb"] / peer["peak_rss_mb"], 3)
    write_result(OUT, result, PEERS)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()

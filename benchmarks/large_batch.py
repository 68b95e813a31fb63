"""Training steps at batch 1,024 with gradient caching and with the plain computation, in the same
run: the default model on stdlib-code train examples (in-batch InfoNCE, 1,024 queries against
1,024 positives a step), queries 32 and functions 64 tokens, each side in its own process under
the same address-space limit (``--memory-limit-gb``), so a side that cannot fit fails with an
error instead of swapping the machine. Peak resident memory and seconds per step are measured
in the child process.

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

OUT = Path(__file__).resolve().parent / "results" / "large_batch.json"
PEERS = ()  # libraries besides torch/transformers/sentence-transformers whose figures it reports
BATCH = 1024


def side(cache_chunk: int | None, steps: int, limit_gb: float, out: Path) -> None:
    """One side, in this (child) process: train ``steps`` steps and write what it measured."""
    import resource

    if limit_gb:
        limit = int(limit_gb * 1024**3)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    result: dict = {"peak_rss_mb": None, "seconds_per_step": None, "error": None}
    try:
        import rankwise as rw

        train = rw.load_dataset("stdlib-code", "train")
        cfg = rw.TrainConfig(
            steps=steps,
            batch_size=BATCH,
            lr=1e-5,
            query_max_length=32,
            doc_max_length=64,
            cache_chunk=cache_chunk,
            warmup_ratio=0.0,
            device="cpu",
        )
        model = rw.BiEncoder.load()
        times: list[float] = []
        last = [time.perf_counter()]

        def on_step(entry) -> None:
            now = time.perf_counter()
            times.append(now - last[0])
            last[0] = now
            print(
                f"step {entry.step}: loss {entry.loss:.4f}, {times[-1]:.1f} s, peak {entry.peak_rss_mb:.0f} MB",
                flush=True,
            )

        res = rw.train(model, train, cfg, on_step=on_step)
        result["seconds_per_step"] = round(sum(times) / len(times), 2)
        result["peak_rss_mb"] = round(res.history[-1].peak_rss_mb, 1)
        result["final_loss"] = res.history[-1].loss
    except (MemoryError, RuntimeError) as exc:  # torch reports allocation failures as RuntimeError
        import resource as r

        result["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        result["peak_rss_mb_at_failure"] = round(r.getrusage(r.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out.write_text(json.dumps(result))


def run_side(name: str, cache_chunk: int | None, steps: int, limit_gb: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "side.json"
        cmd = [
            sys.executable,
            __file__,
            "--side",
            name,
            "--steps",
            str(steps),
            "--memory-limit-gb",
            str(limit_gb),
            "--result",
            str(out),
        ] + (["--cache-chunk", str(cache_chunk)] if cache_chunk else [])
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=dict(os.environ, TOKENIZERS_PARALLELISM="false"))
        if not out.is_file():  # killed (e.g. by the kernel): no result of its own
            return {"peak_rss_mb": None, "seconds_per_step": None, "error": f"exit code {proc.returncode}"}
        result = json.loads(out.read_text())
        result["wall_s"] = round(time.perf_counter() - t0, 1)
        return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--cache-chunk", type=int, default=64)
    ap.add_argument("--memory-limit-gb", type=float, default=12.0, help="address-space limit of each side (0: none)")
    ap.add_argument("--side", choices=["cached", "plain"], help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.side:
        side(args.cache_chunk if args.side == "cached" else None, args.steps, args.memory_limit_gb, Path(args.result))
        return
    cached = run_side("cached", args.cache_chunk, args.steps, args.memory_limit_gb)
    print(f"cached: {cached}", flush=True)
    plain = run_side("plain", None, args.steps, args.memory_limit_gb)
    print(f"plain: {plain}", flush=True)
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
        },
        "cached": cached,
        "plain": plain,
    }
    if cached.get("peak_rss_mb") and plain.get("peak_rss_mb"):
        result["cached_over_plain_peak_rss"] = round(cached["peak_rss_mb"] / plain["peak_rss_mb"], 3)

    write_result(OUT, result, PEERS)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()

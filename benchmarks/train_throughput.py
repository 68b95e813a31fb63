"""Training throughput and memory: rankwise against sentence-transformers' SentenceTransformerTrainer
on the same work, in the settings users run.

Work: the default model (all-MiniLM-L6-v2) fine-tuned for ``--steps`` steps of 32 examples from
stdlib-code train, at each of ``--lengths`` (queries and documents cut at that many tokens) and
in two modes: ``in-batch`` (query, positive pairs; the other positives are the negatives, the
setting a new user runs first) and ``hard-negatives`` (query, positive, BM25 negative triplets:
the top-ranked non-positive document of ranks 1-30, mined once by `rankwise mine`). Cosine
similarity with scale 20 (InfoNCE temperature 0.05 / MNRL scale 20), AdamW lr 1e-4, weight decay
0.01, 10 % linear warm-up then linear decay, clipping at 1.0, float32; rankwise with its default
settings (length-sorted chunks of 4,096 padded tokens on the CPU). Both sides see the same
batches: rankwise draws them with its no-duplicates sampler and the peer replays them through a
batch sampler. tests/training/test_peer_equivalence.py checks that, without dropout, the two
then compute the same loss at every step.

Each run is its own process, so peak resident memory (read right after training,
``benchmarks._memory``) is its own; examples/s is 32 x steps over the training loop's wall time.
``--repeats`` rounds (at least 3), each running every setting on both sides, the side that goes
first alternating between rounds, so a slow phase of the machine hits both. The first round's models are also evaluated
the same way (rankwise's evaluator, at the run's length) on stdlib-code dev, a check that both
sides did the same work. ``--bf16`` adds a bf16-autocast run of rankwise per setting.

    python benchmarks/train_throughput.py [--steps 20] [--repeats 3] [--lengths 128,256] [--bf16]
    python benchmarks/train_throughput.py --device cuda   # the GPU figure: benchmarks/results/gpu.json

``--device cuda`` runs both sides on the GPU, each in fp32 and in bf16 (rankwise's autocast, the
peer's ``bf16=True``), and reports the GPU's peak allocated memory (``peak_device_mb``) beside the
process's resident peak; its defaults (100 steps, 256 tokens, 3 repeats) fit a 10-minute lease.

Each finished run is kept in results/train_throughput.partial.json (git-ignored); a rerun with the
same settings, on the same CPU and the same code (every rankwise and benchmarks source file, the
library versions) resumes from it; anything else measures afresh.

Writes benchmarks/results/train_throughput.json.
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
from benchmarks._memory import peak_rss_mb  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "train_throughput.json"
PEERS = ()  # libraries besides torch/transformers/sentence-transformers whose figures it reports
PARTIAL = RESULTS.with_suffix(".partial.json")
GPU_RESULTS = RESULTS.with_name("gpu.json")
BATCH, LR, SEED = 32, 1e-4, 42
MODES = ("in-batch", "hard-negatives")


def peaks(device: str) -> dict:
    """The process's resident peak, and on a GPU its peak allocated memory."""
    import torch

    out = {"peak_rss_mb": peak_rss_mb()}
    if device.startswith("cuda"):
        out["peak_device_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def write_data(path: Path) -> None:
    """Mine BM25 negatives for stdlib-code train and write (query, positive, negative) text triplets
    (the in-batch mode reads only their query and positive)."""
    from rankwise.data import load_beir
    from rankwise.data.stdlib_code import ensure_built
    from rankwise.negatives.mining import MineOptions, mine

    ds = load_beir(ensure_built(), "train").own_split()
    mined = path.with_suffix(".mined.jsonl")
    mine(ds, MineOptions(method="bm25", k=1, window=(1, 30), code=True), mined, show_progress=False, log_fn=print)
    with open(path, "w", encoding="utf-8") as fh:
        for row in map(json.loads, mined.read_text().splitlines()):
            if row["negative_ids"]:
                positive, negative = ds.corpus[row["positive_ids"][0]], ds.corpus[row["negative_ids"][0]]
                row = {"query": ds.queries[row["query_id"]], "positives": [positive.full_text]}
                fh.write(json.dumps(row | {"negatives": [negative.full_text]}) + "\n")


def mode_data(data: Path, mode: str) -> Path:
    """The file a mode trains on: the triplets, or their (query, positive) pairs."""
    if mode == "hard-negatives":
        return data
    pairs = data.with_name("pairs.jsonl")
    if not pairs.exists():
        rows = [json.loads(x) | {"negatives": []} for x in data.read_text().splitlines()]
        pairs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return pairs


def dev_ndcg(model_dir: str, length: int) -> float:
    from rankwise.data import load_beir
    from rankwise.data.stdlib_code import ensure_built
    from rankwise.metrics.model import evaluate_model
    from rankwise.models import BiEncoder

    model = BiEncoder.load(model_dir, query_max_length=length, doc_max_length=length)
    return evaluate_model(model, load_beir(ensure_built(), "dev").own_split(), show_progress=False).metrics["ndcg@10"]


def rankwise_config(steps: int, length: int, mode: str, bf16: bool = False, device: str = "cpu"):
    """rankwise's side: its defaults, but for what both sides are told to do alike."""
    from rankwise.training import TrainConfig

    return TrainConfig(
        steps=steps,
        batch_size=BATCH,
        lr=LR,
        warmup_ratio=0.1,
        weight_decay=0.01,
        max_grad_norm=1.0,
        seed=SEED,
        query_max_length=length,
        doc_max_length=length,
        negatives="file" if mode == "hard-negatives" else None,
        negatives_per_query=int(mode == "hard-negatives"),
        bf16=bf16,
        device=device,
        batching="nodup",
        checkpoint_every=10**9,
        loss="infonce:temperature=0.05",
    )


def batch_indices(data: Path, steps: int, mode: str) -> list[list[int]]:
    """The example indices of each of rankwise's batches, for the peer to replay."""
    from rankwise.data import load_examples
    from rankwise.training import interop

    return interop.batch_indices(rankwise_config(steps, 256, mode), load_examples(data))


def side_rankwise(args, out: Path) -> dict:
    import torch

    from rankwise.data import load_examples
    from rankwise.models import BiEncoder
    from rankwise.training import train

    torch.manual_seed(SEED)
    examples = load_examples(args.data)
    model = BiEncoder.load(None, device=args.device)
    cfg = rankwise_config(args.steps, args.length, args.mode, args.bf16, args.device)
    t0 = time.perf_counter()
    res = train(model, examples, cfg, out / "run")
    seconds = time.perf_counter() - t0
    peak = peaks(args.device)
    model.save(out / "model")
    hist = res.history
    return {
        "seconds": seconds,
        "examples_per_s": args.steps * BATCH / seconds,
        **peak,
        "padding": sum(h.padding for h in hist) / len(hist),
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
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from rankwise.models import default_model_path
    from rankwise.training.interop import ReplayBatches

    rows = [json.loads(x) for x in Path(args.data).read_text().splitlines()]
    columns = {"anchor": [r["query"] for r in rows], "positive": [r["positives"][0] for r in rows]}
    if args.mode == "hard-negatives":
        columns["negative"] = [r["negatives"][0] for r in rows]
    model = SentenceTransformer(str(default_model_path()), device=args.device)
    model.max_seq_length = args.length
    targs = SentenceTransformerTrainingArguments(
        output_dir=str(out / "st"),
        max_steps=args.steps,
        per_device_train_batch_size=BATCH,
        learning_rate=LR,
        warmup_ratio=0.1,
        lr_scheduler_type="linear",
        weight_decay=0.01,
        max_grad_norm=1.0,
        seed=SEED,
        data_seed=SEED,
        save_strategy="no",
        report_to=[],
        logging_steps=max(1, args.steps // 10),
        use_cpu=args.device == "cpu",
        bf16=args.bf16,
        batch_sampler=ReplayBatches(json.loads(Path(args.batches).read_text())),
    )
    loss = MultipleNegativesRankingLoss(model, scale=20.0)
    trainer = SentenceTransformerTrainer(model=model, args=targs, train_dataset=Dataset.from_dict(columns), loss=loss)
    t0 = time.perf_counter()
    out_metrics = trainer.train()
    seconds = time.perf_counter() - t0
    peak = peaks(args.device)
    model.save(str(out / "model"))
    return {
        "seconds": seconds,
        "examples_per_s": args.steps * BATCH / seconds,
        **peak,
        "mean_loss": out_metrics.training_loss,
        "model": str(out / "model"),
    }


def child(args) -> None:
    out = Path(args.workdir) / f"{args.side}-{args.mode}-{args.length}{'-bf16' if args.bf16 else ''}"
    out.mkdir(parents=True, exist_ok=True)
    res = (side_rankwise if args.side == "rankwise" else side_peer)(args, out)
    model = res.pop("model")
    if args.evaluate:
        res["dev_ndcg@10"] = dev_ndcg(model, args.length)
    print("RESULT " + json.dumps(res), flush=True)


def run_child(side: str, args, work: Path, setting: tuple[int, str], evaluate: bool, bf16: bool = False) -> dict:
    length, mode = setting
    data = mode_data(work / "triplets.jsonl", mode)
    batches = work / f"batches-{mode}.json"
    if not batches.exists():
        batches.write_text(json.dumps(batch_indices(data, args.steps, mode)))
    cmd = [sys.executable, __file__, "--side", side, "--data", str(data), "--steps", str(args.steps)]
    cmd += ["--workdir", str(work), "--length", str(length), "--mode", mode, "--batches", str(batches)]
    cmd += ["--device", args.device]
    cmd += ["--bf16"] * bf16 + ["--evaluate"] * evaluate
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, TOKENIZERS_PARALLELISM="false"))
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"{side} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    res = json.loads(line[len("RESULT ") :])
    dev = f", dev nDCG@10 {res['dev_ndcg@10']:.4f}" if evaluate else ""
    print(
        f"{side}{' bf16' if bf16 else ''} {mode} {length}: {res['examples_per_s']:.2f} examples/s, "
        f"peak {res['peak_rss_mb']:.0f} MB{dev}",
        flush=True,
    )
    return res


def summary(runs: list[dict]) -> dict:
    """Speed as the mean (and spread) over repeats, memory as the largest peak; the runs kept."""
    import statistics

    speeds = [r["examples_per_s"] for r in runs]
    out = {
        "examples_per_s": statistics.mean(speeds),
        "examples_per_s_sd": statistics.stdev(speeds) if len(speeds) > 1 else 0.0,
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "runs": runs,
    }
    if "peak_device_mb" in runs[0]:
        out["peak_device_mb"] = max(r["peak_device_mb"] for r in runs)
    return out | {"dev_ndcg@10": runs[0]["dev_ndcg@10"]} if "dev_ndcg@10" in runs[0] else out


def verdict(rankwise: dict, peer: dict) -> dict:
    """Speed-up as the ratio of means and its range over the repeats paired in order."""
    pairs = [a["examples_per_s"] / b["examples_per_s"] for a, b in zip(rankwise["runs"], peer["runs"])]
    device = (
        {"device_memory_ratio": rankwise["peak_device_mb"] / peer["peak_device_mb"]} if "peak_device_mb" in peer else {}
    )
    return device | {
        "speedup": rankwise["examples_per_s"] / peer["examples_per_s"],
        "speedup_range": [min(pairs), max(pairs)],
        "memory_ratio": rankwise["peak_rss_mb"] / peer["peak_rss_mb"],
        "dev_ndcg_points_apart": 100 * abs(rankwise["dev_ndcg@10"] - peer["dev_ndcg@10"]),
    }


def code_key() -> str:
    """Every rankwise and benchmarks source file and the library versions: runs are kept only on them."""
    import hashlib

    from benchmarks._machine import versions

    h = hashlib.sha256(json.dumps(versions(), sort_keys=True).encode())
    for f in sorted([*(REPO / "src" / "rankwise").rglob("*.py"), *(REPO / "benchmarks").glob("*.py")]):
        h.update(f.relative_to(REPO).as_posix().encode() + f.read_bytes())
    return h.hexdigest()


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=None, help="default 20 (100 on a GPU)")
    ap.add_argument("--repeats", type=int, default=3, help="rounds of every setting on both sides")
    ap.add_argument("--lengths", default=None, help="comma-separated token limits (default 128,256; 256 on a GPU)")
    ap.add_argument("--bf16", action="store_true", help="also run rankwise with bf16 autocast, once per setting")
    ap.add_argument("--device", default="cpu", help="cpu, or cuda for the GPU figure (gpu.json)")
    ap.add_argument("--side", choices=["rankwise", "peer"], help=argparse.SUPPRESS)
    ap.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
    ap.add_argument("--length", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--evaluate", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--batches", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    if args.side:
        return child(args)
    from benchmarks._machine import machine, write_result
    from rankwise.io import write_json

    gpu = args.device.startswith("cuda")
    out_path, partial = (GPU_RESULTS, GPU_RESULTS.with_suffix(".partial.json")) if gpu else (RESULTS, PARTIAL)
    steps_default, lengths_default = (100, "256") if gpu else (20, "128,256")
    args.steps, args.lengths = args.steps or steps_default, args.lengths or lengths_default
    lengths = [int(x) for x in args.lengths.split(",")]
    settings = [(n, mode) for n in lengths for mode in MODES]
    precisions = (False, True) if gpu else (False,)  # bf16 for both sides on a GPU
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_data(work / "triplets.jsonl")
        n = len((work / "triplets.jsonl").read_text().splitlines())
        result = {
            "machine": machine(),
            "steps": args.steps,
            "batch_size": BATCH,
            "token_lengths": lengths,
            "modes": list(MODES),
            "repeats": args.repeats,
            "triplets": n,
            "data": "stdlib-code train; hard negatives: BM25's top non-positive of ranks 1-30",
            "batches": "rankwise's no-duplicates sampler; the peer replays the same batches",
            "rankwise_settings": "rankwise's defaults (chunks of 4,096 padded tokens on the CPU), infonce:temperature=0.05",
            "peer_settings": "SentenceTransformerTrainer + MultipleNegativesRankingLoss(scale=20)",
        }
        where = {"cpu": result["machine"]["cpu"], "gpu": result["machine"]["gpu"], "device": args.device}
        key = json.dumps({"steps": args.steps, "triplets": n, **where, "code": code_key()})
        done = json.loads(partial.read_text()) if partial.is_file() else {}
        done = done if done.get("key") == key else {"key": key, "runs": {}}

        def run(side: str, setting: tuple[int, str], repeat: int, bf16: bool = False) -> dict:
            name = f"{side}-{setting[1]}-{setting[0]}-{repeat}{'-bf16' if bf16 else ''}"
            if name not in done["runs"]:
                done["runs"][name] = run_child(side, args, work, setting, evaluate=repeat == 0, bf16=bf16)
                write_json(partial, done)
            return done["runs"][name]

        runs = {(s, b): {"rankwise": [], "peer": []} for s in settings for b in precisions}
        for repeat in range(args.repeats):
            for setting, bf16 in runs:
                for side in ("rankwise", "peer")[:: 1 if repeat % 2 == 0 else -1]:
                    runs[setting, bf16][side].append(run(side, setting, repeat, bf16))
        result["settings"] = {}
        for ((length, mode), bf16), by_side in runs.items():
            entry = {side: summary(r) for side, r in by_side.items()}
            entry |= verdict(entry["rankwise"], entry["peer"])
            if args.bf16 and not gpu:
                entry["rankwise_bf16"] = run("rankwise", (length, mode), 0, bf16=True)
            result["settings"][f"{mode}@{length}" + ("/bf16" if bf16 else "")] = entry
            print(
                f"{mode} @ {length} tokens: speed-up {entry['speedup']:.2f}x "
                f"({entry['speedup_range'][0]:.2f}-{entry['speedup_range'][1]:.2f}), "
                f"memory {entry['memory_ratio']:.2f}x",
                flush=True,
            )
        write_result(out_path, result | {"device": args.device, "card": result["machine"]["gpu"]}, PEERS)
        print(f"wrote {out_path}")


if __name__ == "__main__":
    main()

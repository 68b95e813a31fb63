"""Training throughput and memory: rankwise against sentence-transformers' SentenceTransformerTrainer
on the same work.

Work: the default model (all-MiniLM-L6-v2) fine-tuned for ``--steps`` steps of 32 (query,
positive, hard negative) triplets from stdlib-code train (BM25 negatives: the top-ranked
non-positive document of ranks 1-30, mined once by `rankwise mine`), queries and documents cut
at 256 tokens, cosine similarity with scale 20 (InfoNCE temperature 0.05 / MNRL scale 20),
AdamW lr 1e-4, weight decay 0.01, 10 % linear warm-up then linear decay, gradient clipping at
1.0, seed 42, float32. The peer uses MultipleNegativesRankingLoss with the no-duplicates batch
sampler that its documentation recommends for it; rankwise encodes a document shared by two
triplets once (the same effect).

Each side runs in its own process, so peak resident memory (ru_maxrss, read right after
training) is its own; examples/s is 32 x steps over the training loop's wall time. After
training, both models are evaluated the same way (rankwise's evaluator, 256 tokens) on
stdlib-code dev. rankwise runs with its length-sorted chunked encoding (``chunk_tokens``);
``--bf16`` adds a bf16-autocast run of each side.

    python benchmarks/train_throughput.py [--steps 60] [--bf16]

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

sys.path.insert(0, str(Path(__file__).resolve().parent))

RESULTS = Path(__file__).resolve().parent / "results" / "train_throughput.json"
BATCH, MAX_LEN, LR, SEED = 32, 256, 1e-4, 42
CHUNK_TOKENS = 4096


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def triplets(path: Path) -> None:
    """Mine BM25 negatives for stdlib-code train and write (query, positive, negative) text triplets."""
    from rankwise.data import load_beir
    from rankwise.data.stdlib_code import ensure_built
    from rankwise.negatives.mining import MineOptions, mine
    from rankwise.workflows import split_corpus

    ds = split_corpus(load_beir(ensure_built(), "train"))
    mined = path.with_suffix(".mined.jsonl")
    mine(ds, MineOptions(method="bm25", k=1, window=(1, 30), code=True), mined, show_progress=False, log_fn=lambda _: None)
    with open(path, "w", encoding="utf-8") as fh:
        for row in map(json.loads, mined.read_text().splitlines()):
            if row["negative_ids"]:
                fh.write(json.dumps({"query": ds.queries[row["query_id"]], "positives": [ds.corpus[row["positive_ids"][0]].full_text],
                                     "negatives": [ds.corpus[row["negative_ids"][0]].full_text]}) + "\n")


def dev_ndcg(model_dir: str) -> float:
    from rankwise.data import load_beir
    from rankwise.data.stdlib_code import ensure_built
    from rankwise.models import BiEncoder
    from rankwise.workflows import evaluate_model, split_corpus

    model = BiEncoder.load(model_dir, query_max_length=MAX_LEN, doc_max_length=MAX_LEN)
    return evaluate_model(model, split_corpus(load_beir(ensure_built(), "dev")), show_progress=False).metrics["ndcg@10"]


CHECKPOINTING = os.environ.get("RANKWISE_BENCH_CHECKPOINTING") == "1"
BATCHING = os.environ.get("RANKWISE_BENCH_BATCHING", "random")


def side_rankwise(data: Path, steps: int, out: Path, bf16: bool) -> dict:
    import torch

    from rankwise.data import load_examples
    from rankwise.models import BiEncoder
    from rankwise.train import TrainConfig, train

    torch.manual_seed(SEED)
    examples = load_examples(data)
    model = BiEncoder.load(None)
    cfg = TrainConfig(steps=steps, batch_size=BATCH, lr=LR, warmup_ratio=0.1, weight_decay=0.01, max_grad_norm=1.0, seed=SEED,
                      query_max_length=MAX_LEN, doc_max_length=MAX_LEN, negatives="file", negatives_per_query=1,
                      chunk_tokens=CHUNK_TOKENS, bf16=bf16, activation_checkpointing=CHECKPOINTING, batching=BATCHING, checkpoint_every=10**9,
                      loss="infonce:temperature=0.05")
    t0 = time.perf_counter()
    res = train(model, examples, cfg, out / "run")
    seconds = time.perf_counter() - t0
    peak = peak_rss_mb()
    model.save(out / "model")
    hist = res.history
    return {"seconds": seconds, "examples_per_s": steps * BATCH / seconds, "peak_rss_mb": peak,
            "padding": sum(h.padding for h in hist) / len(hist), "tokens_per_s": sum(h.tokens_per_s for h in hist) / len(hist),
            "final_loss": hist[-1].loss, "model": str(out / "model")}


def side_peer(data: Path, steps: int, out: Path, bf16: bool) -> dict:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.losses import MultipleNegativesRankingLoss
    from sentence_transformers.training_args import BatchSamplers

    from rankwise.models import default_model_path

    rows = [json.loads(x) for x in data.read_text().splitlines()]
    ds = Dataset.from_dict({"anchor": [r["query"] for r in rows], "positive": [r["positives"][0] for r in rows],
                            "negative": [r["negatives"][0] for r in rows]})
    model = SentenceTransformer(str(default_model_path()), device="cpu")
    model.max_seq_length = MAX_LEN
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out / "st"), max_steps=steps, per_device_train_batch_size=BATCH, learning_rate=LR, warmup_ratio=0.1,
        lr_scheduler_type="linear", weight_decay=0.01, max_grad_norm=1.0, seed=SEED, data_seed=SEED, save_strategy="no",
        report_to=[], logging_steps=max(1, steps // 10), dataloader_drop_last=True, use_cpu=True, bf16=bf16,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=ds, loss=MultipleNegativesRankingLoss(model, scale=20.0))
    t0 = time.perf_counter()
    out_metrics = trainer.train()
    seconds = time.perf_counter() - t0
    peak = peak_rss_mb()
    model.save(str(out / "model"))
    return {"seconds": seconds, "examples_per_s": steps * BATCH / seconds, "peak_rss_mb": peak,
            "final_loss": out_metrics.training_loss, "model": str(out / "model")}


def child(args) -> None:
    out = Path(args.workdir) / f"{args.side}{'-bf16' if args.bf16 else ''}"
    out.mkdir(parents=True, exist_ok=True)
    fn = side_rankwise if args.side == "rankwise" else side_peer
    res = fn(Path(args.data), args.steps, out, args.bf16)
    res["dev_ndcg@10"] = dev_ndcg(res["model"])
    print("RESULT " + json.dumps(res), flush=True)


def run_child(side: str, data: Path, steps: int, workdir: Path, bf16: bool) -> dict:
    cmd = [sys.executable, __file__, "--side", side, "--data", str(data), "--steps", str(steps), "--workdir", str(workdir)]
    if bf16:
        cmd.append("--bf16")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, TOKENIZERS_PARALLELISM="false"))
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"{side} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    res = json.loads(line[len("RESULT "):])
    print(f"{side}{' bf16' if bf16 else ''}: {res['examples_per_s']:.2f} examples/s, peak {res['peak_rss_mb']:.0f} MB, "
          f"dev nDCG@10 {res['dev_ndcg@10']:.4f}", flush=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--bf16", action="store_true", help="also run both sides with bf16 autocast")
    ap.add_argument("--checkpointing", action="store_true", help="rankwise with activation checkpointing")
    ap.add_argument("--only", choices=["rankwise"], help="re-run only rankwise and update the stored result")
    ap.add_argument("--batching", default="random", help="rankwise batching: random, or nodup (the peer's no-duplicates rule)")
    ap.add_argument("--side", choices=["rankwise", "peer"], help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.side:
        return child(args)
    from _machine import machine

    from rankwise.io import write_json

    if args.checkpointing:
        os.environ["RANKWISE_BENCH_CHECKPOINTING"] = "1"
    os.environ["RANKWISE_BENCH_BATCHING"] = args.batching

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "triplets.jsonl"
        triplets(data)
        n = len(data.read_text().splitlines())
        print(f"{n} triplets; {args.steps} steps of {BATCH}", flush=True)
        stored = json.loads(RESULTS.read_text()) if args.only and RESULTS.is_file() else None
        result = {"machine": machine(), "steps": args.steps, "batch_size": BATCH, "max_length": MAX_LEN, "triplets": n,
                  "data": "stdlib-code train, BM25 negative (top non-positive of ranks 1-30)",
                  "rankwise_settings": {"chunk_tokens": CHUNK_TOKENS, "activation_checkpointing": args.checkpointing, "batching": args.batching,
                                        "loss": "infonce:temperature=0.05"},
                  "peer_settings": "SentenceTransformerTrainer + MultipleNegativesRankingLoss(scale=20), NO_DUPLICATES sampler"}
        result["rankwise"] = run_child("rankwise", data, args.steps, work, False)
        result["peer"] = stored["peer"] if stored else run_child("peer", data, args.steps, work, False)
        if stored and stored["rankwise_settings"] != result["rankwise_settings"]:
            result["rankwise_earlier_settings"] = stored["rankwise"] | {"settings": stored["rankwise_settings"]}
        if args.bf16:
            result["rankwise_bf16"] = run_child("rankwise", data, args.steps, work, True)
            result["peer_bf16"] = run_child("peer", data, args.steps, work, True)
        r, p = result["rankwise"], result["peer"]
        result["speedup"] = r["examples_per_s"] / p["examples_per_s"]
        result["memory_ratio"] = r["peak_rss_mb"] / p["peak_rss_mb"]
        result["dev_ndcg_points_apart"] = 100 * abs(r["dev_ndcg@10"] - p["dev_ndcg@10"])
        for side in ("rankwise", "peer", "rankwise_bf16", "peer_bf16"):
            result.get(side, {}).pop("model", None)
        write_json(RESULTS, result)
        print(f"speed-up {result['speedup']:.2f}x, memory {result['memory_ratio']:.2f}x, dev nDCG@10 "
              f"{result['dev_ndcg_points_apart']:.2f} points apart; wrote {RESULTS}")


if __name__ == "__main__":
    main()

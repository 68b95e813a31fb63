"""Learned sparse and multi-vector models: rankwise against sentence-transformers 6's own trainers.

For each family (``sparse``: SPLADE; ``inference-free``; ``multi-vector``: ColBERT), dataset
(stdlib-code, SciFact) and seed, both sides start from the same weights (rankwise's start for that
seed, saved once: all-MiniLM-L6-v2 with its masked-LM head drawn from the seed and fit on the
training positives as ``rw.train`` fits it, ``rankwise.models.sparse_head``; or a fresh
128-dimension projection; the inference-free query table at the training documents' IDF), train on
the same batches of (query, positive) pairs from the train qrels (rankwise's no-duplicates sampler;
the peer replays them) for ``--steps`` steps of 32 at the same learning rate, queries at 32 and
documents at 128 tokens. The peer runs its documented losses: ``SpladeLoss`` over
``SparseMultipleNegativesRankingLoss`` with its regulariser weights (query 5e-5, document 3e-5;
inference-free: document 3e-3 alone, the table at lr 1e-3 as its docs train it) and the
multi-vector trainer's default ``MultiVectorMultipleNegativesRankingLoss``; rankwise runs InfoNCE at
temperature 1 (their scale 1) with its ``flops`` / ``idf-flops`` regularisers at the same weights.
Each training runs in its own process (examples/s over the training call, peak RSS). Both trained
models are then scored by one evaluator (rankwise's exact search over the test corpus): nDCG@10,
Recall@100 and per-query values, mean non-zeros (sparse). BM25 is scored on each test split.

    python benchmarks/families.py [--steps 60] [--seeds 42,43,44] [--datasets stdlib-code,scifact]
                                  [--families sparse,inference-free,multi-vector]

Finished runs are kept (``benchmarks/runs/families/``, keyed by settings and code), so a study
longer than a session resumes. Writes benchmarks/results/families.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: benchmarks is a package
from benchmarks._cache import RunCache  # noqa: E402
from benchmarks._machine import machine, write_result  # noqa: E402
from benchmarks._memory import peak_rss_mb  # noqa: E402
from benchmarks.settings import RESULTS, RUNS, SCIFACT  # noqa: E402

OUT = RESULTS / "families.json"
PEERS = ("scipy",)
BATCH, LR, QUERY_LEN, DOC_LEN = 32, 2e-5, 32, 128
FAMILIES = ("sparse", "inference-free", "multi-vector")
REGULARISER = {"sparse": "flops:query=5e-5,doc=3e-5", "inference-free": "idf-flops:doc=3e-3"}


def dataset(name: str, split: str):
    from rankwise.data import load_beir
    from rankwise.data.stdlib_code import ensure_built

    return load_beir(ensure_built() if name == "stdlib-code" else SCIFACT, split).own_split()


def start_model(family: str, seed: int, data: str, folder: Path) -> Path:
    """Both sides' start: rankwise's fresh model for the seed, saved as a sentence-transformers folder."""
    from rankwise.data import examples_from_qrels
    from rankwise.models.multi_vector import MultiVectorEncoder
    from rankwise.models.sparse_encoder import SparseEncoder
    from rankwise.models.sparse_head import fit_fresh_head

    if family == "multi-vector":
        model = MultiVectorEncoder(seed=seed, doc_max_length=DOC_LEN)
    else:
        model = SparseEncoder(
            seed=seed, inference_free=family == "inference-free", query_max_length=QUERY_LEN, doc_max_length=DOC_LEN
        )
        documents = list(
            dict.fromkeys(t for ex in examples_from_qrels(dataset(data, "train")) for _, t in ex.positives)
        )
        fit_fresh_head(model, documents, seed=seed)  # rankwise's sparse start, given to both sides
        if family == "inference-free":
            model.set_idf(documents)
    return model.save(folder)


def start_once(family: str, seed: int, data: str, root: Path) -> Path:
    folder = root / f"{family}-{data}-{seed}"
    return folder if folder.is_dir() else start_model(family, seed, data, folder)


def config(family: str, steps: int, seed: int):
    from rankwise.training import TrainConfig

    return TrainConfig(
        kind=family,
        steps=steps,
        batch_size=BATCH,
        lr=LR,
        seed=seed,
        warmup_ratio=0.1,
        batching="nodup",
        query_max_length=QUERY_LEN,
        doc_max_length=DOC_LEN,
        loss="infonce:temperature=1.0",
        sparsity=REGULARISER.get(family),
        checkpoint_every=10**9,
        head_lr_scale=1e-3 / LR if family == "inference-free" else 1.0,  # the table at lr 1e-3, as the peer's
    )


def train_rankwise(args, start: Path, out: Path) -> float:
    import rankwise as rw
    from rankwise.data import examples_from_qrels
    from rankwise.families import load_model

    model = load_model(start)
    examples = examples_from_qrels(dataset(args.data, "train"))
    t0 = time.perf_counter()
    rw.train(model, examples, config(args.family, args.steps, args.seed), out / "run")
    seconds = time.perf_counter() - t0
    model.save(out / "model")
    return seconds


def peer_parts(family: str, start: Path):
    """The peer's model, trainer classes and loss for ``family``, from the start folder."""
    if family == "multi-vector":
        from sentence_transformers.multi_vector_encoder import (
            MultiVectorEncoder,
            MultiVectorEncoderTrainer,
            MultiVectorEncoderTrainingArguments,
        )
        from sentence_transformers.multi_vector_encoder.losses import MultiVectorMultipleNegativesRankingLoss

        model = MultiVectorEncoder(str(start), device="cpu")
        return (
            model,
            MultiVectorEncoderTrainer,
            MultiVectorEncoderTrainingArguments,
            MultiVectorMultipleNegativesRankingLoss(model),
            {},
        )
    from sentence_transformers.sparse_encoder import SparseEncoder, SparseEncoderTrainer, SparseEncoderTrainingArguments
    from sentence_transformers.sparse_encoder.losses import SparseMultipleNegativesRankingLoss, SpladeLoss

    model = SparseEncoder(str(start), device="cpu")
    if family == "sparse":
        loss = SpladeLoss(
            model,
            SparseMultipleNegativesRankingLoss(model),
            query_regularizer_weight=5e-5,
            document_regularizer_weight=3e-5,
        )
        return model, SparseEncoderTrainer, SparseEncoderTrainingArguments, loss, {}
    loss = SpladeLoss(
        model,
        SparseMultipleNegativesRankingLoss(model),
        document_regularizer_weight=3e-3,
        use_document_regularizer_only=True,
    )
    return (
        model,
        SparseEncoderTrainer,
        SparseEncoderTrainingArguments,
        loss,
        {"learning_rate_mapping": {r"sub_modules\.query\.0\.weight": 1e-3}},  # the query table at lr 1e-3
    )


def train_peer(args, start: Path, out: Path) -> float:
    from datasets import Dataset

    from rankwise.data import examples_from_qrels
    from rankwise.training.interop import ReplayBatches, batch_indices

    examples = examples_from_qrels(dataset(args.data, "train"))
    batches = batch_indices(config(args.family, args.steps, args.seed), examples)
    data = Dataset.from_dict({"query": [e.query for e in examples], "document": [e.positives[0][1] for e in examples]})
    model, trainer_cls, args_cls, loss, extra = peer_parts(args.family, start)
    model.max_seq_length = DOC_LEN
    targs = args_cls(
        output_dir=str(out / "st"),
        max_steps=args.steps,
        per_device_train_batch_size=BATCH,
        learning_rate=LR,
        warmup_ratio=0.1,
        lr_scheduler_type="linear",
        seed=args.seed,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        batch_sampler=ReplayBatches(batches),
        router_mapping={"query": "query", "document": "document"},
        **extra,
    )
    trainer = trainer_cls(model=model, args=targs, train_dataset=data, loss=loss)
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0
    model.save(str(out / "model"))
    return seconds


def evaluate(model_dir: Path, data: str) -> dict:
    """One evaluator for both sides: rankwise's exact search over the test corpus."""
    from rankwise.families import family_of, load_model

    model = load_model(model_dir)
    for side in ("query_max_length", "doc_max_length"):
        if hasattr(model.config, side):
            setattr(model.config, side, QUERY_LEN if side.startswith("query") else DOC_LEN)
    res = family_of(model).evaluate(dataset(data, "test"), k=100, metrics=["ndcg@10", "recall@100"])
    return {"metrics": res.metrics, "per_query": {m: res.per_query[m] for m in ("ndcg@10", "recall@100")}}


def child(args) -> None:
    out = Path(args.workdir)
    seconds = (train_rankwise if args.side == "rankwise" else train_peer)(args, Path(args.start), out)
    result = {"examples_per_s": args.steps * BATCH / seconds, "seconds": seconds, "peak_rss_mb": peak_rss_mb()}
    print("RESULT " + json.dumps(result | evaluate(out / "model", args.data)), flush=True)


def run_side(side: str, family: str, data: str, seed: int, steps: int, start: Path) -> dict:
    with tempfile.TemporaryDirectory() as work:
        cmd = [sys.executable, __file__, "--side", side, "--family", family, "--data", data, "--seed", str(seed)]
        cmd += ["--steps", str(steps), "--start", str(start), "--workdir", work]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, TOKENIZERS_PARALLELISM="false"))
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"{side} {family} {data} {seed} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(line[len("RESULT ") :])


def summary(runs: list[dict]) -> dict:
    def mean(key, where="metrics"):
        return statistics.mean(r[where][key] if where else r[key] for r in runs)

    out = {
        "ndcg@10": mean("ndcg@10"),
        "recall@100": mean("recall@100"),
        "examples_per_s": mean("examples_per_s", None),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
    }
    if "nonzero_doc" in runs[0]["metrics"]:
        out |= {"nonzero_doc": mean("nonzero_doc"), "nonzero_query": mean("nonzero_query")}
    return out | {
        "seeds": [
            {"ndcg@10": r["metrics"]["ndcg@10"], **{k: r[k] for k in ("examples_per_s", "peak_rss_mb")}} for r in runs
        ],
        "per_query": [r["per_query"] for r in runs],
    }


def study(args) -> dict:
    import rankwise.families  # noqa: F401  (the cache keys on the code the runs use)
    from rankwise.metrics.model import evaluate_model

    cache = RunCache("families", keep=RUNS / "families", shrink=lambda r: r)
    starts = Path(tempfile.mkdtemp(prefix="families-starts-"))  # a start is built once for both sides
    out: dict = {}
    for data in args.datasets.split(","):
        bm25 = evaluate_model("bm25", dataset(data, "test"), 100).metrics
        out[data] = {"bm25": {"ndcg@10": bm25["ndcg@10"], "recall@100": bm25["recall@100"]}}
        for family in args.families.split(","):
            runs: dict[str, list] = {"rankwise": [], "peer": []}
            for n, seed in enumerate(int(s) for s in args.seeds.split(",")):
                for side in ("rankwise", "peer")[:: 1 if n % 2 == 0 else -1]:  # alternated between seeds
                    settings = {"side": side, "family": family, "data": data, "seed": seed, "steps": args.steps}
                    result = cache.run(
                        settings,
                        lambda folder, side=side, family=family, data=data, seed=seed: run_side(
                            side, family, data, seed, args.steps, start_once(family, seed, data, starts)
                        ),
                    )
                    print(
                        f"{data} {family} {side} seed {seed}: nDCG@10 {result['metrics']['ndcg@10']:.4f}, "
                        f"{result['examples_per_s']:.2f} examples/s",
                        flush=True,
                    )
                    runs[side].append(result)
            out[data][family] = {side: summary(r) for side, r in runs.items()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--seeds", default="42,43,44")
    ap.add_argument("--datasets", default="stdlib-code,scifact")
    ap.add_argument("--families", default=",".join(FAMILIES))
    for hidden in ("--side", "--family", "--data", "--seed", "--start", "--workdir"):
        ap.add_argument(hidden, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.side:
        args.seed, args.steps = int(args.seed), int(args.steps)
        return child(args)
    settings = {
        "batch_size": BATCH,
        "lr": LR,
        "query_max_length": QUERY_LEN,
        "doc_max_length": DOC_LEN,
        "steps": args.steps,
        "seeds": [int(s) for s in args.seeds.split(",")],
        "rankwise_loss": "infonce:temperature=1.0",
        "regularisers": REGULARISER,
    }
    result = {"machine": machine(), "settings": settings, "datasets": study(args)}
    write_result(OUT, result, PEERS)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()

"""``rankwise demo`` (``make demo``): build stdlib-code, evaluate BM25 and the base model,
fine-tune, evaluate again; a killed demo continues from its last checkpoint."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rankwise.data import examples_from_qrels, load_beir
from rankwise.data.stdlib_code import ensure_built
from rankwise.index.retrieve import bm25_run
from rankwise.jobs.folder import RunFolder
from rankwise.jobs.train import finish_training, train_with_progress
from rankwise.metrics import DEFAULT_METRICS, evaluate
from rankwise.metrics.model import evaluate_model
from rankwise.progress import console
from rankwise.report.run_report import build_report
from rankwise.training import TrainConfig
from rankwise.training.loop import latest_checkpoint, remove_checkpoints

Log = Callable[[str], None]


@dataclass
class DemoConfig:
    """rankwise's recipe on stdlib-code, sized for a first run on 2 CPU cores: InfoNCE over NGAME
    batches (each batch a cluster of neighbouring queries, re-clustered with the model being
    trained every 30 steps, so in-batch negatives are hard ones), 90 steps.

    Chosen on the dev split in the negatives study (benchmarks/README.md, "Negatives comparison",
    dev nDCG@10): NGAME 0.7352 against in-batch InfoNCE's 0.7258; only BM25 negatives + NGAME +
    false-negative weighting scored higher (0.7398), at about 1.6 times the training time, which
    does not fit a first run's ten minutes on 2 cores with set-up (benchmarks/results/demo.json)."""

    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            steps=90,
            batch_size=32,
            lr=1e-4,
            warmup_ratio=0.1,
            query_max_length=32,
            doc_max_length=128,
            checkpoint_every=30,
            batching="ngame:every=30,cluster_size=8",
        )
    )
    eval_max_length: int = 128


# The baseline beside the recipe: in-batch InfoNCE with the same budget (90 steps, batch 32, lr
# 1e-4, 32/128 tokens, seed 42), measured by benchmarks/demo.py; a test keeps it equal to the file.
BASELINE = {"ndcg@10": 0.6754, "recipe": "in-batch InfoNCE, same budget", "source": "benchmarks/results/demo.json"}


@dataclass
class DemoJob:
    bm25: dict[str, float]
    before: dict[str, float]
    after: dict[str, float]
    folder: Path
    recipe: str = ""  # what was trained, in words
    baseline: dict = field(default_factory=lambda: dict(BASELINE))  # the recorded plain-InfoNCE figure
    seconds: float = 0.0

    @property
    def gain(self) -> float:
        """nDCG@10 points gained by fine-tuning."""
        return 100 * (self.after["ndcg@10"] - self.before["ndcg@10"])


def demo(
    out: str | Path = "runs/demo",
    *,
    data_dir: str | Path | None = None,
    steps: int | None = None,
    show_progress: bool = True,
    log: Log = console.print,
) -> DemoJob:
    """The demo in ``out``: a killed demo continues from its last checkpoint, a finished one is replaced."""
    resume = latest_checkpoint(out) is not None
    with RunFolder.open(out, resume=resume, overwrite=not resume) as folder:
        return _demo(folder, data_dir, steps, show_progress, log, resume)


def _baselines(folder: RunFolder, data: Path, cfg: TrainConfig, demo_cfg: DemoConfig, show_progress: bool, log: Log):
    test = load_beir(data, "test").own_split()
    log("[bold]2/5[/] BM25 baseline on test")
    bm25 = bm25_run(test, 100, code=True, show_progress=show_progress)
    folder.write_run("run-bm25.trec", bm25, tag="bm25")
    log("[bold]3/5[/] base model (all-MiniLM-L6-v2) on test")
    from rankwise.models import BiEncoder

    length = demo_cfg.eval_max_length
    model = BiEncoder.load(cfg.model, query_max_length=length, doc_max_length=length)
    before = evaluate_model(model, test, show_progress=show_progress, cache=True)
    folder.write_run("run-before.trec", before.run, tag="base")
    return test, evaluate(test.qrels, bm25, DEFAULT_METRICS), model, before


def _demo(folder: RunFolder, data_dir, steps: int | None, show_progress: bool, log: Log, resume: bool) -> DemoJob:
    t0 = time.perf_counter()
    demo_cfg = DemoConfig()
    cfg = demo_cfg.train.model_copy(update={"steps": steps} if steps else {})
    log("[bold]1/5[/] building the stdlib-code dataset from this Python's standard library")
    data = ensure_built(data_dir)
    train_ds = load_beir(data, "train")
    examples = examples_from_qrels(train_ds)
    test, bm25, model, before = _baselines(folder, data, cfg, demo_cfg, show_progress, log)
    log(
        f"    {len(examples)} training queries; test: {len(test.qrels)} queries over {len(test.corpus)} documents of the test modules"
    )
    log(f"[bold]4/5[/] fine-tuning: {cfg.steps} steps, batch {cfg.batch_size}, {cfg.loss}")
    run = {"command": "demo", "data": str(data), "split": "train", "eval_split": "test"}
    folder.write_config(run, cfg, {"demo": {"eval_max_length": demo_cfg.eval_max_length}})
    result = train_with_progress(
        model, examples, cfg, folder.path, resume, show_progress, train_ds=train_ds.own_split()
    )
    finish_training(model, result, folder)
    log("[bold]5/5[/] fine-tuned model on test")
    after = evaluate_model(model, test, show_progress=show_progress)
    folder.write_run("run.trec", after.run, tag="finetuned")
    recipe = f"{cfg.steps} steps of {cfg.loss} over {cfg.batching} batches"
    job = DemoJob(bm25, before.metrics, after.metrics, folder.path, recipe, seconds=time.perf_counter() - t0)
    folder.write_json("metrics.json", {"before": before.metrics, "after": after.metrics, "bm25": bm25})
    build_report(
        folder.path,
        others=[folder / "run-bm25.trec"],
        summary=(
            f"rankwise demo: fine-tuning all-MiniLM-L6-v2 on stdlib-code with rankwise's recipe. Test split: "
            f"{len(test.qrels)} docstring queries over {len(test.corpus)} functions of modules unseen in training. "
            f"Fine-tuning ({recipe}, batch {cfg.batch_size}, {cfg.loss}) changed nDCG@10 by {job.gain:+.1f} points in "
            f"{job.seconds:.0f} s; {BASELINE['recipe']} reaches {BASELINE['ndcg@10']:.4f} ({BASELINE['source']})."
        ),
    )
    remove_checkpoints(folder.path)
    return job

"""The demo's figures and time, and the plain baseline beside it.

``python benchmarks/demo.py``: runs ``rankwise demo`` (rankwise's recipe, :class:`rankwise.jobs.demo.DemoConfig`)
in a fresh folder and times it, then trains the plain baseline with the same budget (in-batch
InfoNCE: the demo's config without its negatives, batching and false-negative options) and scores
it on the same test split; writes ``benchmarks/results/demo.json`` (commit, versions, machine).
One seed (42), as the demo prints it; the recipe's multi-seed comparison against the peer is
``recipes_vs_peer.py``'s.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: benchmarks is a package
from benchmarks._machine import machine, write_result  # noqa: E402
from benchmarks.settings import RESULTS  # noqa: E402

OUT = RESULTS / "demo.json"
PEERS = ()  # libraries besides torch/transformers/sentence-transformers whose figures it reports


def baseline(config, eval_max_length: int) -> dict:
    """In-batch InfoNCE with the demo's budget: its test metrics and training seconds."""
    from rankwise.data import examples_from_qrels, load_beir
    from rankwise.data.stdlib_code import ensure_built
    from rankwise.metrics.model import evaluate_model
    from rankwise.models import BiEncoder
    from rankwise.training import train

    plain = config.model_copy(update={"negatives": "inbatch", "batching": "random", "false_negatives": None})
    data = ensure_built()
    model = BiEncoder.load(None, query_max_length=eval_max_length, doc_max_length=eval_max_length)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        train(model, examples_from_qrels(load_beir(data, "train")), plain, Path(tmp), log=lambda _: None)
    seconds = time.perf_counter() - t0
    test = load_beir(data, "test").own_split()
    return {"config": plain.to_toml_dict(), "train_seconds": round(seconds, 1), **evaluate_model(model, test).metrics}


def main() -> None:
    from rankwise.jobs.demo import DemoConfig, demo

    cfg = DemoConfig()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        job = demo(Path(tmp) / "demo", show_progress=False, log=lambda _: None)
        seconds = time.perf_counter() - t0
    result = {
        "settings": {"recipe": cfg.train.to_toml_dict(), "eval_max_length": cfg.eval_max_length},
        "demo": {"seconds": round(seconds, 1), "bm25": job.bm25, "base": job.before, "recipe": job.after},
        "gain_points": round(job.gain, 2),
        "baseline": baseline(cfg.train, cfg.eval_max_length),
        "machine": machine(),
    }
    write_result(OUT, result, PEERS)
    b = result["baseline"]
    print(
        f"demo {seconds / 60:.1f} min: base {job.before['ndcg@10']:.4f} -> recipe {job.after['ndcg@10']:.4f} "
        f"({job.gain:+.1f} points); in-batch InfoNCE {b['ndcg@10']:.4f} ({b['train_seconds']:.0f} s training); wrote {OUT}"
    )


if __name__ == "__main__":
    main()

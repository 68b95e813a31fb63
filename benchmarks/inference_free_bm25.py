"""Can an inference-free sparse model beat BM25 on SciFact? rankwise's recipe, chosen on dev, scored on test.

**Start**, per seed: all-MiniLM-L6-v2 with its masked-LM head drawn from the seed and fit on the
corpus texts (``rankwise.models.sparse_head.fit_fresh_head``: name each token, shift the biases to a
sparse start, then ``bm25_steps`` steps at lr ``BM25_LR`` shaping the pooled document weights
toward BM25's term-frequency part), documents at 256 tokens; the query table at the corpus IDF. The
corpus is read as BM25 reads it (no labels). **Training**: the families protocol's rankwise side
(``benchmarks/families.py``: InfoNCE at temperature 1, ``idf-flops:doc=3e-3``, 32 pairs a step at
lr 2e-5, the table at lr 1e-3, queries at 32 tokens, documents at 128) for ``steps`` steps on
SciFact train less a 100-query dev split (``hold_out(100, seed=0)``). With a ``teacher``, the seed
paper's heterogeneous ensemble distillation (Geng et al., 2024) joins it: each training query's
top 30 of BM25 and all-MiniLM-L6-v2 fused give 7 negatives, scored by the same two as one teacher
(each min-max normalised per query, averaged: ``rankwise.negatives.teacher.EnsembleTeacher``) and
multiplied by ``TEACHER_SCALE``, the authors' ``score_scale``; a step takes 3 of them a query, and
the loss is ``TEACHER_LOSSES[teacher]`` (InfoNCE plus listwise KL toward the teacher, both at
temperature 1). The mining reads train's qrels only. **Evaluation**: exact search over the
corpus, documents encoded at 512 tokens under bf16 autocast (queries are a table lookup): nDCG@10,
Recall@100, per query, on dev and test from one encoding of the corpus.

The setting is chosen among ``CANDIDATES`` by dev nDCG@10 on seed 42 (every candidate's test score
is kept too, to show the choice did not favour test), then run on seeds 43 and 44. BM25 (bm25s
over words, the families study's baseline) is scored on the same splits; the chosen setting's
three seeds are compared with it by the two-level bootstrap (queries and seeds).

    python benchmarks/inference_free_bm25.py

Finished runs are kept (``benchmarks/runs/inference_free_bm25/``). Writes
benchmarks/results/inference_free_bm25.json.
"""

from __future__ import annotations

import hashlib
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: benchmarks is a package
from benchmarks._cache import RunCache  # noqa: E402
from benchmarks._machine import machine, write_result  # noqa: E402
from benchmarks.settings import RESULTS, RUNS, SCIFACT  # noqa: E402

OUT = RESULTS / "inference_free_bm25.json"
PEERS = ("bm25s",)
SEEDS = (42, 43, 44)
FIT_LEN, TRAIN_LEN, EVAL_LEN, QUERY_LEN = 256, 128, 512, 32
METRICS = ["ndcg@10", "recall@100"]
# (BM25-shaping steps, training steps, teacher). A dev-only scratch at seed 42 (benchmarks/README)
# put 300 shaping steps at lr 1e-3 (start 0.597, after the families recipe 0.645) above the first
# round's 100 at 3e-4 (0.614 after it), and the teacher at the authors' scale near InfoNCE alone
# (0.638; the first round's teacher at temperature 0.2 lost 9.7 dev points); twice the steps is new
CANDIDATES = ((300, 60, None), (300, 60, "ensemble"), (300, 120, None))
BM25_LR = 1e-3
TEACHER = "default+bm25"  # all-MiniLM-L6-v2 and BM25, per-query min-max, equal weights
# the authors' ensemble scores are min-max fused then times 30 (opensearch-sparse-model-tuning-sample,
# BiEncoderWrapper score_scale), against the student's raw dot products at temperature 1
TEACHER_SCALE, NEGATIVES_PER_STEP = 30.0, 3
TEACHER_LOSSES = {"ensemble": "infonce:temperature=1.0+kl"}


def splits():
    """(train less dev, dev, test) of SciFact, over one corpus."""
    from rankwise.data import load_beir

    rest, dev = load_beir(SCIFACT, "train").hold_out(100, seed=0)
    return rest, dev.own_split(), load_beir(SCIFACT, "test").own_split()


def start(seed: int, bm25_steps: int, corpus: list[str]):
    from rankwise.models.sparse_encoder import SparseEncoder
    from rankwise.models.sparse_head import fit_fresh_head

    model = SparseEncoder(seed=seed, inference_free=True, query_max_length=QUERY_LEN, doc_max_length=FIT_LEN)
    fit = fit_fresh_head(model, corpus, seed=seed, bm25_steps=bm25_steps, bm25_lr=BM25_LR)
    model.set_idf(corpus)
    return model, fit


def entry(res) -> dict:
    """A split's means and per-query values of ``METRICS``."""
    return {"metrics": res.metrics, "per_query": {m: res.per_query[m] for m in METRICS}}


def scored(model, dev, test) -> dict:
    """nDCG@10 and Recall@100 (means and per query) on dev and test from one encoding of the corpus."""
    import torch

    from rankwise.index.retrieve import corpus_texts, search_run
    from rankwise.index.sparse import SparseRetriever
    from rankwise.metrics.model import score_run
    from rankwise.models.sparse_encoder import mean_nonzeros

    model.config.doc_max_length = EVAL_LEN
    ids, texts = corpus_texts(test)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        retriever = SparseRetriever(model, ids, texts)
    out: dict = {"nonzero_doc": mean_nonzeros(retriever.docs)}
    for name, split in (("dev", dev), ("test", test)):
        out[name] = entry(score_run(split, search_run(retriever, split, 100), METRICS))
    return out


def mined(cache: RunCache, train) -> Path:
    """The training queries' ensemble-scored negatives, mined once for every seed."""
    from rankwise.negatives.mining import MineOptions, mine

    opts = MineOptions(
        method="fused", k=7, window=(1, 30), margin=0.0, teacher=TEACHER, max_length=FIT_LEN,
        teacher_scale=TEACHER_SCALE,
    )  # fmt: skip
    queries = hashlib.sha256(" ".join(sorted(train.qrels)).encode()).hexdigest()[:16]
    path = cache.workdir({"mined": repr(opts), "queries": queries}) / "negatives.jsonl"
    if not path.is_file():
        mine(train, opts, path, show_progress=False)
    return path


def one_run(data: tuple, seed: int, bm25_steps: int, steps: int, teacher: str | None, negatives: Path | None) -> dict:
    import rankwise as rw
    from benchmarks.families import config
    from rankwise.data import examples_from_qrels
    from rankwise.index.retrieve import corpus_texts
    from rankwise.negatives.strategies import attach_mined

    train, dev, test = data
    model, fit = start(seed, bm25_steps, corpus_texts(test)[1])
    model.config.doc_max_length = TRAIN_LEN
    examples, cfg = examples_from_qrels(train), config("inference-free", steps, seed)
    if teacher is not None:
        attach_mined(examples, negatives, train)
        cfg.negatives, cfg.negatives_per_query = "file", NEGATIVES_PER_STEP
        cfg.loss = TEACHER_LOSSES[teacher]
    # no run folder: a run cut off by a session's end starts again from its start
    rw.train(model, examples, cfg)
    return {"head_fit": {"loss": fit.loss, "bm25_loss": fit.bm25_loss, "shift": fit.shift}} | scored(model, dev, test)


def bm25(dev, test) -> dict:
    from rankwise.metrics.model import evaluate_model

    return {
        name: entry(evaluate_model("bm25", split, 100, metrics=METRICS))
        for name, split in (("dev", dev), ("test", test))
    }


def verdict(runs: list[dict], base: dict) -> dict:
    """The chosen setting's seeds against BM25 on test: mean, per-seed values, seed-aware difference."""
    import numpy as np

    from rankwise.metrics.significance import two_level_bootstrap

    qids = sorted(base["test"]["per_query"]["ndcg@10"])
    a = np.array([[r["test"]["per_query"]["ndcg@10"].get(q, 0.0) for q in qids] for r in runs])
    b = np.array([[base["test"]["per_query"]["ndcg@10"][q] for q in qids]])
    diff, (lo, hi), p = two_level_bootstrap(a, b)
    return {
        "ndcg@10": statistics.mean(r["test"]["metrics"]["ndcg@10"] for r in runs),
        "recall@100": statistics.mean(r["test"]["metrics"]["recall@100"] for r in runs),
        "seeds": [r["test"]["metrics"]["ndcg@10"] for r in runs],
        "minus_bm25": {"difference": diff, "ci95": [lo, hi], "p": p, "test": "two-level bootstrap (queries, seeds)"},
    }


def main() -> None:
    cache = RunCache("inference_free_bm25", keep=RUNS / "inference_free_bm25")
    data = splits()
    base = bm25(*data[1:])

    def run(seed: int, bm25_steps: int, steps: int, teacher: str | None) -> dict:
        settings = {"seed": seed, "bm25_steps": bm25_steps, "steps": steps, "teacher": teacher}
        result = cache.run(
            settings,
            lambda _: one_run(data, seed, bm25_steps, steps, teacher, mined(cache, data[0]) if teacher else None),
        )
        print(f"seed {seed} {settings}: dev {result['dev']['metrics']['ndcg@10']:.4f}", flush=True)
        return result

    candidates = {c: run(SEEDS[0], *c) for c in CANDIDATES}
    chosen = max(CANDIDATES, key=lambda c: candidates[c]["dev"]["metrics"]["ndcg@10"])
    runs = [candidates[chosen]] + [run(seed, *chosen) for seed in SEEDS[1:]]
    settings = {
        "data": "scifact: train less hold_out(100, seed=0) (dev); test",
        "lengths": {"fit": FIT_LEN, "train": TRAIN_LEN, "eval": EVAL_LEN, "query": QUERY_LEN},
        "bm25_shaping_lr": BM25_LR,
        "eval_precision": "bf16 autocast (documents)",
        "candidates": CANDIDATES,
        "seeds": SEEDS,
        "recipe": "benchmarks/families.py config('inference-free', steps, seed)",
        "teacher": {
            "ensemble": TEACHER,
            "mining": "fused BM25 + dense top 30, 7 negatives",
            "per_step": NEGATIVES_PER_STEP,
            "scale": TEACHER_SCALE,
            "losses": TEACHER_LOSSES,
        },
    }
    result = {
        "machine": machine(),
        "settings": settings,
        "bm25": base,
        "candidates": [
            {"bm25_steps": c[0], "steps": c[1], "teacher": c[2]}
            | {s: candidates[c][s]["metrics"] for s in ("dev", "test")}
            for c in CANDIDATES
        ],
        "chosen": {"bm25_steps": chosen[0], "steps": chosen[1], "teacher": chosen[2]},
        "runs": runs,
        "test": verdict(runs, base),
    }
    write_result(OUT, result, PEERS)
    print(f"chosen {chosen}: test {result['test']}; wrote {OUT}")


if __name__ == "__main__":
    main()

"""Mine 10 dense hard negatives per stdlib-code training query with the default model, with
rankwise and, in the same run, with sentence-transformers' ``util.mine_hard_negatives`` on the
same model and settings: the train split's queries and positives, the train split's corpus,
ranks 1-100, the top 10 non-positive candidates, batch size 128, 256 tokens, exact faiss search.

Each side is timed from data in memory to mined negatives (model loading included, each side
loads its own copy); the order alternates over ``--repeats`` rounds and the medians are kept.
Agreement: the share of rankwise's negatives that sentence-transformers also mined.

    python benchmarks/mining.py [--repeats 1]

Writes benchmarks/results/mining.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: benchmarks is a package
from benchmarks._machine import machine, write_result  # noqa: E402
from rankwise.data import load_beir  # noqa: E402
from rankwise.data.stdlib_code import ensure_built  # noqa: E402
from rankwise.models import default_model_path  # noqa: E402
from rankwise.negatives.mining import MineOptions, mine  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "mining.json"
PEERS = ("faiss-cpu",)  # libraries besides torch/transformers/sentence-transformers whose figures it reports
K, DEPTH, BATCH, MAX_LEN = 10, 100, 128, 256


def run_rankwise(ds) -> dict[str, list[str]]:
    import json

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "neg.jsonl"
        mine(
            ds,
            MineOptions(method="dense", k=K, window=(1, DEPTH), max_length=MAX_LEN),
            out,
            show_progress=False,
            log_fn=lambda _: None,
        )
        return {r["query_id"]: r["negative_ids"] for r in map(json.loads, out.read_text().splitlines())}


def run_peer(ds) -> dict[str, list[str]]:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.util import mine_hard_negatives

    model = SentenceTransformer(str(default_model_path()), device="cpu")
    model.max_seq_length = MAX_LEN
    ids = list(ds.corpus)
    texts = [ds.corpus[d].full_text for d in ids]
    anchors, positives = [], []
    for qid, judged in ds.qrels.items():
        for d, g in judged.items():
            if g >= 1:
                anchors.append(ds.queries[qid])
                positives.append(ds.corpus[d].full_text)
    pairs = Dataset.from_dict({"anchor": anchors, "positive": positives})
    mined = mine_hard_negatives(
        pairs,
        model,
        corpus=texts,
        range_max=DEPTH,
        num_negatives=K,
        sampling_strategy="top",
        batch_size=BATCH,
        use_faiss=True,
        output_format="n-tuple",
        verbose=False,
    )
    by_text = {t: d for d, t in zip(ids, texts)}
    query_id = {ds.queries[q]: q for q in ds.qrels}
    cols = [c for c in mined.column_names if c.startswith("negative")]
    return {query_id[row["anchor"]]: [by_text[row[c]] for c in cols] for row in mined}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    ds = load_beir(ensure_built(), "train").own_split()
    print(f"stdlib-code train: {len(ds.qrels)} queries, {len(ds.corpus)} documents")
    times: dict[str, list[float]] = {"rankwise": [], "peer": []}
    results = {}
    for r in range(args.repeats):
        for side in ("rankwise", "peer") if r % 2 == 0 else ("peer", "rankwise"):
            t0 = time.perf_counter()
            results[side] = (run_rankwise if side == "rankwise" else run_peer)(ds)
            times[side].append(time.perf_counter() - t0)
            print(f"{side}: {times[side][-1]:.1f} s")
    ours, peer = results["rankwise"], results["peer"]
    shared = [q for q in ours if q in peer]
    overlap = sum(len(set(ours[q]) & set(peer[q])) for q in shared) / max(1, sum(len(ours[q]) for q in shared))
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "machine": machine(),
        "queries": len(ds.qrels),
        "corpus": len(ds.corpus),
        "negatives_per_query": K,
        "depth": DEPTH,
        "batch_size": BATCH,
        "max_length": MAX_LEN,
        "repeats": args.repeats,
        "rankwise_seconds": med["rankwise"],
        "peer_seconds": med["peer"],
        "ratio_peer_over_rankwise": med["peer"] / med["rankwise"],
        "negative_overlap": overlap,
        "peer": "sentence_transformers.util.mine_hard_negatives (use_faiss=True)",
    }
    write_result(OUT, result, PEERS)
    print(
        f"peer / rankwise = {result['ratio_peer_over_rankwise']:.2f}; overlap of negatives {overlap:.3f}; wrote {OUT}"
    )


if __name__ == "__main__":
    main()

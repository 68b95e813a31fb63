"""Encoding and indexing corpora of 10k, 100k and 1M short documents in bounded memory.

Documents: 8-16 words drawn (seeded) from the vocabulary of the stdlib-code corpus. Encoder: a
randomly initialised 2-layer, 64-wide BERT with the default model's tokenizer (the figures are
about the machinery, not retrieval quality). Each size runs in a fresh process, so its peak
resident memory is its own: the corpus is encoded shard by shard (50,000 documents) into the
on-disk store (``rankwise.index.store``), the index is built from the memory-mapped embeddings
(``rankwise.index.ann``, the size's automatic choice: exact up to 100k, HNSW beyond, efConstruction
160); from 100k a flat index is built beside it, so the approximate one is compared with exact
search on the same machine.

Queries: 2,000 corpus documents with noise added to their embeddings, split in two disjoint
halves. The search effort (HNSW's efSearch) is tuned on the first half (raised until recall@10
against exact search reaches 0.95); recall@10 is reported on the second half, which the tuning
never saw (``recall@10_disjoint``), with queries per second on it (one batch of 1,000 queries, 2
threads) for every index built.

    python benchmarks/scale.py [--sizes 10000,100000,1000000]

Every size in the results file comes from the same run (no rows from earlier code).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: benchmarks is a package
from benchmarks._machine import machine, write_result  # noqa: E402
from benchmarks.settings import REPO  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "scale.json"
PEERS = ("faiss-cpu",)  # libraries besides torch/transformers/sentence-transformers whose figures it reports


class SyntheticCorpus:
    """``n`` documents of 8-16 words from ``words``; document ``i`` depends on ``i`` alone (seeded)."""

    def __init__(self, words: list[str], n: int) -> None:
        self.words, self.n = words, n

    def __len__(self) -> int:
        return self.n

    def _doc(self, i: int) -> str:
        import numpy as np

        rng = np.random.default_rng([7, i])
        return " ".join(self.words[j] for j in rng.integers(0, len(self.words), int(rng.integers(8, 17))))

    def __getitem__(self, key):
        if isinstance(key, slice):
            return [self._doc(i) for i in range(*key.indices(self.n))]
        return self._doc(key)

    def __iter__(self):
        return (self._doc(i) for i in range(self.n))


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one_size(n: int, work: Path, kinds: list[str]) -> dict:
    import numpy as np
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from rankwise.data.stdlib_code import ensure_built
    from rankwise.index.ann import auto_structure, build_index, recall_vs_exact, tune_recall
    from rankwise.index.store import EmbeddingStore
    from rankwise.models import BiEncoder, default_model_path
    from rankwise.models.bi_encoder import EncoderConfig

    torch.set_num_threads(2)
    words = sorted(
        {
            w
            for line in (ensure_built() / "corpus.jsonl").open()
            for w in json.loads(line)["text"].split()[:40]
            if w.isalpha()
        }
    )
    texts = SyntheticCorpus(words, n)  # made on demand, shard by shard: the corpus is never in memory
    rng = np.random.default_rng(0)
    tok = AutoTokenizer.from_pretrained(str(default_model_path()))
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=tok.vocab_size, hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128
    )
    model = BiEncoder(BertModel(cfg).eval(), tok, EncoderConfig(query_max_length=32, doc_max_length=32), "tiny-random")
    t0 = time.perf_counter()
    store = EmbeddingStore.build(
        work / "store",
        lambda b: model.encode(b, "doc", batch_size=512),
        texts,
        dim=64,
        model_key="tiny-random",
        log=lambda _: None,
    )
    encode_s = time.perf_counter() - t0
    emb = store.embeddings()
    after_encode = peak_mb()
    picked = rng.choice(n, 2000, replace=False)
    queries = emb[picked] + 0.05 * rng.standard_normal((2000, 64)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    tune_on, report_on = queries[:1000], queries[1000:]  # disjoint: the reported recall was never tuned on
    row = {"docs": n, "encode_s_per_doc": encode_s / n, "encode_s": encode_s, "peak_rss_after_encode_mb": after_encode}
    indexes = []
    for kind in kinds:
        kind = auto_structure(n) if kind == "auto" else kind
        if any(i["kind"] == kind for i in indexes):
            continue
        index = build_index(emb, kind, ef_construction=160)  # a random encoder's narrow cone wants a denser graph
        first = recall_vs_exact(index, emb, tune_on, 10)
        tuned = tune_recall(index, emb, tune_on, target=0.95, limit=16_384) if kind != "flat" else first
        t0 = time.perf_counter()
        index.search(report_on, 10)
        qps = len(report_on) / (time.perf_counter() - t0)
        indexes.append(
            {
                "kind": kind,
                "build_s": index.build_seconds,
                "recall@10_tuned_queries": tuned,
                "recall@10_disjoint": recall_vs_exact(index, emb, report_on, 10),
                "recall@10_default_effort": first,
                "qps": qps,
                "effort": {k: v for k, v in index.recall.items() if not k.startswith("recall")},
                "index_mb": index.memory_bytes() / 2**20,
            }
        )
        del index
    row["indexes"] = indexes
    main = next(i for i in indexes if i["kind"] == auto_structure(n))
    row |= {k: main[k] for k in ("recall@10_disjoint", "qps", "index_mb")} | {"index": main["kind"]}
    row["peak_rss_mb"] = peak_mb()
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # run one size in this process
    args = ap.parse_args()
    if args.one:
        with tempfile.TemporaryDirectory() as tmp:
            kinds = ["auto", "flat", "hnsw"] if args.one >= 100_000 else ["auto"]
            print(json.dumps(one_size(args.one, Path(tmp), kinds)))
        return
    rows = []
    for n in (int(x) for x in args.sizes.split(",")):
        proc = subprocess.run([sys.executable, __file__, "--one", str(n)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(proc.stderr[-3000:])
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    settings = {"queries": "2,000 noisy corpus documents: 1,000 to tune efSearch (target recall 0.95), 1,000 to report"}
    write_result(OUT, {"machine": machine(), "settings": settings, "sizes": rows}, PEERS)


if __name__ == "__main__":
    main()

"""What a sparse model over all-MiniLM-L6-v2's word pieces can reach by term statistics alone.

BM25 (bm25s, Lucene's formula) on SciFact test over the backbone's word pieces instead of words,
with documents cut where a sparse encoder would cut them (128, 256, 512 tokens), and the same with
binary term weights (k1 -> 0, b = 0: each present token counts its IDF once, which is what a
sparse start whose head names each token gives with an IDF query table). The words' BM25 (the
baseline the inference-free bar names) is scored beside it. No training; about a minute.

    python benchmarks/wordpiece_bm25.py

Writes benchmarks/results/wordpiece_bm25.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: benchmarks is a package
from benchmarks._machine import machine, write_result  # noqa: E402
from benchmarks.settings import RESULTS, SCIFACT  # noqa: E402

OUT = RESULTS / "wordpiece_bm25.json"
PEERS = ("bm25s",)
LENGTHS = (128, 256, 512)
WEIGHTS = {"bm25": (1.5, 0.75), "binary": (0.01, 0.0)}


def wordpiece_run(tokenizer, dataset, limit: int, k1: float, b: float, k: int = 100) -> dict:
    """``{qid: {docid: score}}`` of BM25 over word pieces, documents cut at ``limit`` tokens with
    the encoder's two special tokens counted, queries at 32."""
    import bm25s

    from rankwise.index.retrieve import corpus_texts

    ids, texts = corpus_texts(dataset)
    corpus = [tokenizer.tokenize(t)[: limit - 2] for t in texts]
    index = bm25s.BM25(k1=k1, b=b)
    index.index(corpus, show_progress=False)
    qids = list(dataset.split_queries)
    queries = [[t for t in tokenizer.tokenize(dataset.split_queries[q])[:30] if t in index.vocab_dict] for q in qids]
    run: dict = {}
    for qid, tokens in zip(qids, queries):
        if not tokens:
            run[qid] = {}
            continue
        docs, scores = index.retrieve([tokens], k=k, show_progress=False, n_threads=1)
        run[qid] = {ids[d]: float(s) for d, s in zip(docs[0], scores[0]) if s > 0}
    return run


def main() -> None:
    from transformers import AutoTokenizer

    from rankwise.data import load_beir
    from rankwise.metrics.model import evaluate_model, score_run
    from rankwise.models.bi_encoder import resolve_source

    test = load_beir(SCIFACT, "test").own_split()
    tokenizer = AutoTokenizer.from_pretrained(str(resolve_source(None)[0]))
    out: dict = {"words": evaluate_model("bm25", test, 100).metrics["ndcg@10"], "wordpieces": {}}
    for name, (k1, b) in WEIGHTS.items():
        out["wordpieces"][name] = {
            str(n): score_run(test, wordpiece_run(tokenizer, test, n, k1, b), ["ndcg@10"]).metrics["ndcg@10"]
            for n in LENGTHS
        }
        print(name, out["wordpieces"][name], flush=True)
    settings = {"data": "scifact test", "weights": WEIGHTS, "lengths": LENGTHS, "query_tokens": 30}
    write_result(OUT, {"machine": machine(), "settings": settings, "ndcg@10": out}, PEERS)
    print(f"words {out['words']:.4f}; wrote {OUT}")


if __name__ == "__main__":
    main()

"""``rankwise encode``: a corpus into an on-disk embedding store, shard by shard; a killed run resumes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rankwise.progress import console


@dataclass
class EncodeJob:
    out: Path
    documents: int
    dim: int
    shards: int
    ids: list[str]  # the document id of each row


def encode(
    data: str | Path,
    out: str | Path,
    *,
    split: str | None = None,
    model: str | None = None,
    max_length: int | None = None,
    shard_size: int = 50_000,
    ray: str | None = None,
    workers: int = 2,
) -> EncodeJob:
    """Encode ``data``'s corpus (``split``: its documents only) with a dual encoder into ``out``
    (``embeddings.f32`` memory-mapped, ``manifest.json``, ``ids.json``: row -> document id)."""
    from rankwise.data import load_beir
    from rankwise.data.beir import load_corpus
    from rankwise.data.jsonl import find_file
    from rankwise.io import write_json
    from rankwise.jobs.eval import check_limits

    check_limits(max_length=max_length)
    corpus = load_beir(data, split).own_split().corpus if split else load_corpus(find_file(Path(data), "corpus.jsonl"))
    ids, texts = list(corpus), [doc.full_text for doc in corpus.values()]
    if ray is not None:
        from rankwise.index.distributed_encode import ray_store

        store = ray_store(
            out,
            model,
            texts,
            address=ray,
            workers=workers,
            max_length=max_length,
            shard_size=shard_size,
            log=console.print,
        )
    else:
        from rankwise.index.retrieve import embeddings_key
        from rankwise.index.store import EmbeddingStore
        from rankwise.models import BiEncoder

        m = BiEncoder.load(model, query_max_length=max_length, doc_max_length=max_length)
        store = EmbeddingStore.build(
            out,
            lambda batch: m.encode(batch, "doc", batch_size=128),
            texts,
            dim=m.dim,
            model_key=embeddings_key(m, ["doc"]),
            shard_size=shard_size,
            log=console.print,
        )
    write_json(Path(out) / "ids.json", ids)
    n, dim = store.shape
    return EncodeJob(Path(out), n, dim, store.manifest["shards"], ids)

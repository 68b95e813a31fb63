"""Encoding corpora across machines with Ray (optional extra ``rankwise[ray]``).

One Ray actor per worker holds one copy of the model (loaded from a folder every machine can
read, or the packaged default); the corpus's shards go to the actors as they free up, and each
finished shard is written into the on-disk store (:mod:`rankwise.index.store`) at once, so a
killed run resumes without re-encoding a finished shard. The rows equal the single-process
encoding's (the same model, batch order and padding per batch); mining and evaluation then read
the store exactly as they read a single-process one.

    ray start --head                         # on one machine; `ray start --address HEAD:6379` on the others
    rankwise encode --data DIR --split test --model M --out STORE --ray HEAD:6379
    rankwise mine --data DIR --out NEG.jsonl --method dense --ray HEAD:6379
    rankwise eval --data DIR --split test --model M --out RUN --ray HEAD:6379
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from rankwise.errors import RankwiseError
from rankwise.index.store import EmbeddingStore


def _ray():
    try:
        import ray
    except ImportError:
        raise RankwiseError("--ray needs Ray: pip install 'rankwise[ray]' (or pip install ray)") from None
    return ray


def connect(address: str | None) -> None:
    """Join the Ray cluster at ``address`` ("auto": the one this machine belongs to); None or "local":
    start a local one."""
    ray = _ray()
    if ray.is_initialized():
        return
    kwargs = {"ignore_reinit_error": True, "log_to_driver": False, "include_dashboard": False}
    if address in (None, "", "local"):
        ray.init(**kwargs)
    else:
        ray.init(address=address, **kwargs)


class _Encoder:
    """A Ray actor's state: one model copy."""

    def __init__(self, model: str | None, max_length: int | None, batch_size: int) -> None:
        import torch

        from rankwise.models import BiEncoder

        torch.set_num_threads(1)
        self.model = BiEncoder.load(model, query_max_length=max_length, doc_max_length=max_length, device="cpu")
        self.batch_size = batch_size

    def encode(self, shard: int, texts: list[str], side: str) -> tuple[int, np.ndarray]:
        return shard, self.model.encode(texts, side, batch_size=self.batch_size)


def ray_store(
    folder: str | Path,
    model: str | None,
    texts: Sequence[str],
    *,
    address: str | None = None,
    workers: int = 2,
    max_length: int | None = None,
    side: str = "doc",
    shard_size: int = 50_000,
    batch_size: int = 128,
    model_key: str = "",
    loaded=None,
    log: Callable[[str], None] = print,
) -> EmbeddingStore:
    """Encode ``texts`` with ``workers`` Ray actors into the store at ``folder`` (resumable).
    ``loaded``: the same model already loaded here (for its width and key; else it is loaded once)."""
    ray = _ray()
    connect(address)
    from rankwise.models import BiEncoder

    probe = loaded or BiEncoder.load(model, query_max_length=max_length, doc_max_length=max_length, device="cpu")
    dim, key = probe.dim, model_key or _model_key(probe, side)
    del probe
    store = EmbeddingStore.create(folder, texts, dim=dim, model_key=key, shard_size=shard_size, log=log)
    todo = store.missing()
    if not todo:
        return store
    actor_cls = ray.remote(num_cpus=1)(_Encoder)
    actors = [actor_cls.remote(model, max_length, batch_size) for _ in range(max(1, min(workers, len(todo))))]
    running = {}

    def submit(actor) -> None:
        s = todo.pop(0)
        running[actor.encode.remote(s, list(texts[store.rows_of(s)]), side)] = actor

    for actor in actors:
        if todo:
            submit(actor)
    try:
        while running:
            ready, _ = ray.wait(list(running), num_returns=1)
            actor = running.pop(ready[0])
            s, rows = ray.get(ready[0])
            store.write(s, rows)  # each shard on disk as soon as it is done: memory holds a shard, not the corpus
            log(f"shard {s + 1}/{store.manifest['shards']} encoded ({len(rows)} texts)")
            if todo:
                submit(actor)
    finally:
        for actor in actors:
            ray.kill(actor)
    return store


def _model_key(model, side: str) -> str:
    from rankwise.index.retrieve import embeddings_key

    return embeddings_key(model, [side])


def corpus_embeddings(
    dataset,
    model: str | None,
    *,
    address: str | None = None,
    workers: int = 2,
    max_length: int | None = None,
    shard_size: int = 50_000,
    loaded=None,
    log: Callable[[str], None] = print,
) -> np.memmap:
    """The split's corpus embeddings (rows in corpus order) from a store under ``cache_dir()/stores``,
    encoded with Ray when missing; memory-mapped. ``loaded``: the model already loaded here (its
    width and store key; else it is loaded once)."""
    from rankwise.index.retrieve import corpus_texts, embeddings_key
    from rankwise.io import cache_dir
    from rankwise.models import BiEncoder

    _, texts = corpus_texts(dataset)
    probe = loaded or BiEncoder.load(model, query_max_length=max_length, doc_max_length=max_length, device="cpu")
    store = ray_store(
        cache_dir() / "stores" / embeddings_key(probe, texts),
        model,
        texts,
        address=address,
        workers=workers,
        max_length=max_length,
        shard_size=shard_size,
        loaded=probe,
        log=log,
    )
    return store.embeddings()

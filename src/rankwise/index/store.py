"""Corpora beyond memory: embeddings encoded in shards into one memory-mapped file on disk.

``EmbeddingStore.build(folder, model, texts)`` encodes ``shard_size`` documents at a time and
writes each shard's rows into ``embeddings.f32`` (float32, ``[n, dim]``, row-major); a shard is
marked done in ``manifest.json`` only after its rows are flushed, so a killed build resumes where
it stopped and never recomputes a finished shard. The manifest keeps the model key (its
weights, settings) and the texts' hash, so a store is reused only for the same model and corpus.
Readers get a read-only ``numpy.memmap``: memory holds the pages in use, not the corpus.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from rankwise.errors import RankwiseError
from rankwise.io import write_json

MANIFEST = "manifest.json"
DATA = "embeddings.f32"


def texts_key(texts: Sequence[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(hashlib.sha256(t.encode()).digest())
    return h.hexdigest()[:32]


class EmbeddingStore:
    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        path = self.folder / MANIFEST
        if not path.is_file():
            raise RankwiseError(f"{self.folder}: no embedding store ({MANIFEST} missing)")
        self.manifest = json.loads(path.read_text(encoding="utf-8"))

    @property
    def complete(self) -> bool:
        return len(self.manifest["done"]) == self.manifest["shards"]

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.manifest["n"]), int(self.manifest["dim"])

    def embeddings(self) -> np.memmap:
        """The ``[n, dim]`` float32 rows, memory-mapped read-only."""
        if not self.complete:
            raise RankwiseError(
                f"{self.folder}: {len(self.manifest['done'])} of {self.manifest['shards']} shards encoded"
            )
        return np.memmap(self.folder / DATA, dtype=np.float32, mode="r", shape=self.shape)

    @classmethod
    def create(
        cls,
        folder: str | Path,
        texts: Sequence[str],
        *,
        dim: int,
        model_key: str = "",
        shard_size: int = 50_000,
        log: Callable[[str], None] = print,
    ) -> EmbeddingStore:
        """A store for ``texts`` in ``folder``: a new one, or the interrupted one of the same model,
        texts and shard size there (another store there is refused)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        n = len(texts)
        shards = max(1, -(-n // shard_size))
        want = {
            "n": n,
            "dim": dim,
            "shard_size": shard_size,
            "shards": shards,
            "model": model_key,
            "texts": texts_key(texts),
        }
        path = folder / MANIFEST
        manifest = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        if manifest is not None and {k: manifest.get(k) for k in want} != want:
            raise RankwiseError(f"{folder}: holds a store of another model, corpus or shard size; use a new folder")
        if manifest is None:
            np.memmap(folder / DATA, dtype=np.float32, mode="w+", shape=(max(n, 1), dim)).flush()
            write_json(path, want | {"done": []})
        elif manifest["done"]:
            log(f"{folder}: {len(manifest['done'])} of {shards} shards already encoded; continuing")
        return cls(folder)

    def missing(self) -> list[int]:
        return [s for s in range(self.manifest["shards"]) if s not in self.manifest["done"]]

    def rows_of(self, shard: int) -> slice:
        size = self.manifest["shard_size"]
        return slice(shard * size, min(self.manifest["n"], (shard + 1) * size))

    def write(self, shard: int, rows: np.ndarray) -> None:
        """Shard ``shard``'s rows, flushed to disk before the manifest marks the shard done."""
        where = self.rows_of(shard)
        rows = np.asarray(rows, dtype=np.float32)
        if rows.shape != (where.stop - where.start, self.manifest["dim"]):
            raise RankwiseError(
                f"shard {shard}: rows of shape {rows.shape}, expected {(where.stop - where.start, self.manifest['dim'])}"
            )
        out = np.memmap(
            self.folder / DATA, dtype=np.float32, mode="r+", shape=(max(self.manifest["n"], 1), self.manifest["dim"])
        )
        out[where] = rows
        out.flush()
        del out
        self.manifest["done"] = sorted({*self.manifest["done"], shard})
        write_json(self.folder / MANIFEST, self.manifest)  # atomically, after the rows are on disk

    @classmethod
    def build(
        cls,
        folder: str | Path,
        encode: Callable[[list[str]], np.ndarray],
        texts: Sequence[str],
        *,
        dim: int,
        model_key: str = "",
        shard_size: int = 50_000,
        progress: Callable[[int], None] | None = None,
        log: Callable[[str], None] = print,
    ) -> EmbeddingStore:
        """Encode ``texts`` with ``encode(batch) -> [len, dim]`` into ``folder``, shard by shard,
        continuing an interrupted build of the same model and texts."""
        store = cls.create(folder, texts, dim=dim, model_key=model_key, shard_size=shard_size, log=log)
        for s in store.missing():
            where = store.rows_of(s)
            store.write(s, encode(list(texts[where])))
            if progress:
                progress(where.stop - where.start)
        return store

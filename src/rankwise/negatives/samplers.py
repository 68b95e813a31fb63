"""Which training examples share a batch (``--batching``), so in-batch negatives are useful.

* ``random`` — epoch-wise shuffles (the default).
* ``nodup`` — like random, but an example whose positive or hard negatives are already in the
  batch waits for the next batch, so no document appears twice in a batch (a repeated document
  would be one query's positive and another's "negative").
* ``tas:clusters=C`` — TAS-Balanced (Hofstätter et al., SIGIR 2021): the training queries are
  embedded once with the starting model and clustered with k-means (faiss) into C clusters;
  each batch is drawn from one random cluster (topic-focused, so in-batch negatives are hard),
  filled from another random cluster when the cluster is too small. With teacher scores in the
  training data, ``balanced=true`` picks each query's hard negative by TAS's balanced margin
  sampling: the teacher margins T(q,p+) - T(q,n) are split into ``bins`` equal-width bins, a
  non-empty bin is chosen uniformly, then a negative within it.
* ``ngame:every=N,cluster_size=S`` — NGAME (Dahiya et al., WSDM 2023): every N steps the
  queries are re-embedded with the current model and clustered into groups of about S
  (k-means into n/S clusters); the clusters are shuffled, concatenated and cut into batches,
  so each batch holds neighbouring queries whose positives are each other's hard negatives.

Every choice is a function of (seed, step) and of state kept in checkpoints, so resuming
reproduces the uninterrupted run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from rankwise.data.examples import TrainExample
from rankwise.errors import ConfigError, RankwiseError
from rankwise.spec import parse_options, split_spec

KINDS = ("random", "nodup", "tas", "ngame")


@dataclass
class TasOptions:
    clusters: int = 64
    balanced: bool = True
    bins: int = 10


@dataclass
class NgameOptions:
    every: int = 100
    cluster_size: int = 8


def kmeans(x: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Cluster id of each row (faiss k-means on L2-normalised rows, i.e. spherical k-means)."""
    import faiss

    x = np.ascontiguousarray(x, dtype=np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    k = max(1, min(k, len(x)))
    km = faiss.Kmeans(x.shape[1], k, niter=20, nredo=3, seed=seed, spherical=True, min_points_per_centroid=1,
                      max_points_per_centroid=1 << 20)
    km.train(x)
    return km.index.search(x, 1)[1][:, 0].astype(np.int64)


class Sampler:
    """Random batches, epoch by epoch; subclasses change how a batch is composed."""

    def __init__(self, spec: str, n_examples: int, batch_size: int, seed: int, *, bucket: int = 0) -> None:
        self.spec = spec
        self.kind, params = split_spec(spec)
        if self.kind not in KINDS:
            raise ConfigError(f"batching {spec!r}: unknown sampler {self.kind!r}; available: {', '.join(KINDS)}")
        if n_examples < batch_size:
            raise RankwiseError(f"batch size {batch_size} is larger than the {n_examples} training examples")
        self.n, self.bs, self.seed = n_examples, batch_size, seed
        self.tas = parse_options(f"batching {spec!r}", params, TasOptions) if self.kind == "tas" else None
        self.ngame = parse_options(f"batching {spec!r}", params, NgameOptions) if self.kind == "ngame" else None
        if self.kind in ("random", "nodup") and params:
            raise ConfigError(f"batching {spec!r}: {self.kind} takes no parameters")
        self.assign: np.ndarray | None = None  # cluster of each example
        self.order: np.ndarray | None = None  # NGAME: the current cluster-ordered example sequence
        self.order_start = 0
        self.last_refresh = -1
        self._epoch_cache: dict[int, list[np.ndarray]] = {}
        self.bucket = bucket  # random batching: sort by length within buckets of this many batches
        self.lengths: np.ndarray | None = None
        if bucket and self.kind != "random":
            raise ConfigError(f"length_bucket applies to random batching, not {self.kind!r}")

    # ------------------------------------------------------------ clustering
    def needs_embeddings(self, step: int) -> bool:
        if self.kind == "tas":
            return self.assign is None
        if self.kind == "ngame":
            return self.last_refresh < 0 or step - self.last_refresh >= self.ngame.every
        return False

    def cluster(self, step: int, query_embeddings: np.ndarray) -> None:
        if self.kind == "tas":
            self.assign = kmeans(query_embeddings, self.tas.clusters, self.seed)
        else:
            k = max(1, self.n // self.ngame.cluster_size)
            self.assign = kmeans(query_embeddings, k, self.seed + step)
            rng = np.random.default_rng([self.seed, 7, step])
            clusters = [np.flatnonzero(self.assign == c) for c in rng.permutation(int(self.assign.max()) + 1)]
            self.order = np.concatenate([rng.permutation(c) for c in clusters if len(c)])
            self.order_start = step
        self.last_refresh = step

    # --------------------------------------------------------------- batches
    def indices(self, step: int, examples: Sequence[TrainExample]) -> np.ndarray:
        if self.kind == "random":
            return self._random(step)
        if self.kind == "nodup":
            return self._nodup(step, examples)
        if self.kind == "tas":
            return self._tas(step)
        return self._ngame(step)

    def _random(self, step: int) -> np.ndarray:
        per_epoch = self.n // self.bs
        epoch, pos = divmod(step, per_epoch)
        order = np.random.default_rng([self.seed, epoch]).permutation(self.n)
        if self.bucket and self.lengths is not None:
            # length-aware: sort inside large random buckets (batches stay diverse), then shuffle the batches
            size = self.bucket * self.bs
            order = np.concatenate([b[np.argsort(-self.lengths[b], kind="stable")] for b in np.split(order, range(size, self.n, size))])
            batches = order[: per_epoch * self.bs].reshape(per_epoch, self.bs)
            return batches[np.random.default_rng([self.seed, epoch, 1]).permutation(per_epoch)[pos]]
        return order[pos * self.bs : (pos + 1) * self.bs]

    def _nodup(self, step: int, examples: Sequence[TrainExample]) -> np.ndarray:
        per_epoch = self.n // self.bs
        epoch, pos = divmod(step, per_epoch)
        if epoch not in self._epoch_cache:
            self._epoch_cache = {epoch: self._nodup_epoch(epoch, examples)}
        batches = self._epoch_cache[epoch]
        return batches[pos % len(batches)]

    def _nodup_epoch(self, epoch: int, examples: Sequence[TrainExample]) -> list[np.ndarray]:
        """Greedy pass over the epoch's shuffle: an example that would repeat a document waits."""
        order = list(np.random.default_rng([self.seed, epoch]).permutation(self.n))
        batches: list[np.ndarray] = []
        waiting: list[int] = []
        while order or waiting:
            batch, seen = [], set()
            queue, rest = waiting + order, []
            for j, i in enumerate(queue):
                docs = {d for d, _ in examples[i].positives} | {d for d, _ in examples[i].negatives}
                if docs & seen:
                    rest.append(i)
                    continue
                batch.append(i)
                seen |= docs
                if len(batch) == self.bs:  # full: the rest waits, in order (keeps an epoch linear in its size)
                    rest.extend(queue[j + 1:])
                    break
            if len(batch) < self.bs:
                break  # the last, incomplete batch is dropped (as in random batching)
            batches.append(np.array(batch))
            waiting, order = rest, []
        if not batches:
            raise RankwiseError(f"batching 'nodup': no batch of {self.bs} examples without a repeated document")
        return batches

    def _tas(self, step: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, 3, step])
        clusters = [np.flatnonzero(self.assign == c) for c in range(int(self.assign.max()) + 1)]
        clusters = [c for c in clusters if len(c)]
        out: list[int] = []
        for c in rng.permutation(len(clusters)):
            members = clusters[int(c)]
            need = self.bs - len(out)
            out.extend(int(i) for i in rng.choice(members, size=min(need, len(members)), replace=False))
            if len(out) == self.bs:
                break
        return np.array(out)

    def _ngame(self, step: int) -> np.ndarray:
        per = len(self.order) // self.bs
        pos = (step - self.order_start) % per
        return self.order[pos * self.bs : (pos + 1) * self.bs]

    # ------------------------------------------------------ balanced margins
    def choose_negatives(self):
        """TAS-Balanced's margin-bin choice of hard negatives, when the examples carry teacher scores."""
        if self.kind != "tas" or not self.tas.balanced:
            return None
        bins = self.tas.bins

        def choose(take: int, ex: TrainExample, rng: np.random.Generator) -> list[int]:
            if not ex.scores or "negatives" not in ex.scores or len(ex.scores["negatives"]) != len(ex.negatives):
                return list(rng.choice(len(ex.negatives), size=take, replace=False))
            margins = max(ex.scores["positives"]) - np.asarray(ex.scores["negatives"])
            edges = np.linspace(margins.min(), margins.max(), bins + 1)
            which = np.clip(np.digitize(margins, edges[1:-1]), 0, bins - 1)
            chosen: list[int] = []
            for _ in range(take):
                open_bins = [b for b in range(bins) if any(which[j] == b and j not in chosen for j in range(len(margins)))]
                b = open_bins[int(rng.integers(len(open_bins)))]
                members = [j for j in range(len(margins)) if which[j] == b and j not in chosen]
                chosen.append(members[int(rng.integers(len(members)))])
            return chosen

        return choose

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        return {"assign": self.assign, "order": self.order, "order_start": self.order_start, "last_refresh": self.last_refresh}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.assign, self.order = state["assign"], state["order"]
        self.order_start, self.last_refresh = state["order_start"], state["last_refresh"]

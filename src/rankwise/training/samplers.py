"""Batch samplers (``--batching``): which training examples share a batch, so in-batch
negatives are useful. One class each, found by name in :data:`BATCHING`; pass your own
:class:`BatchSampler` subclass to use another.

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
* ``mix:mode=proportional|round-robin`` — dataset mixing: each batch from one training set
  (examples tagged by :func:`rankwise.data.examples.mix_sources`, or several ``--train-file``).
* ``ngame:every=N,cluster_size=S`` — NGAME (Dahiya et al., WSDM 2023): every N steps the
  queries are re-embedded with the current model and clustered into groups of about S
  (k-means into n/S clusters); the clusters are shuffled, concatenated and cut into batches,
  so each batch holds neighbouring queries whose positives are each other's hard negatives.

Every choice is a function of (seed, step) and of state kept in checkpoints, so resuming
reproduces the uninterrupted run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from rankwise.data.examples import TrainExample
from rankwise.errors import ConfigError, RankwiseError
from rankwise.registry import Registry

ChooseNegatives = Callable[[int, TrainExample, np.random.Generator], Sequence[int]]


def kmeans(x: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Cluster id of each row (faiss k-means on L2-normalised rows, i.e. spherical k-means)."""
    import faiss

    x = np.ascontiguousarray(x, dtype=np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    k = max(1, min(k, len(x)))
    km = faiss.Kmeans(
        x.shape[1],
        k,
        niter=20,
        nredo=3,
        seed=seed,
        spherical=True,
        min_points_per_centroid=1,
        max_points_per_centroid=1 << 20,
    )
    km.train(x)
    return km.index.search(x, 1)[1][:, 0].astype(np.int64)


@dataclass
class BatchSampler:
    """Random batches, epoch by epoch; subclasses change how a batch is composed.

    The trainer calls :meth:`bind` once with the run's sizes, then :meth:`indices` per step;
    samplers that cluster queries say so with :meth:`needs_embeddings` and get them in :meth:`cluster`.
    """

    embeds_queries: ClassVar[bool] = False  # cluster() takes the model's query embeddings
    n: int = field(default=0, init=False, compare=False)
    bs: int = field(default=0, init=False, compare=False)
    seed: int = field(default=0, init=False, compare=False)
    lengths: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    def bind(self, n_examples: int, batch_size: int, seed: int) -> BatchSampler:
        if n_examples < batch_size:
            raise RankwiseError(f"batch size {batch_size} is larger than the {n_examples} training examples")
        self.n, self.bs, self.seed = n_examples, batch_size, seed
        return self

    @property
    def wants_lengths(self) -> bool:
        """Whether :attr:`lengths` (each example's longest text, in tokens) is used."""
        return False

    def needs_embeddings(self, step: int) -> bool:
        return False

    def cluster(self, step: int, query_embeddings: np.ndarray) -> None:
        pass

    def indices(self, step: int, examples: Sequence[TrainExample]) -> np.ndarray:
        raise NotImplementedError

    def choose_negatives(self) -> ChooseNegatives | None:
        """How each example's hard negatives are picked (None: uniformly)."""
        return None

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def __str__(self) -> str:
        return BATCHING.spec_of(self) or type(self).__name__


BATCHING: Registry[BatchSampler] = Registry("batching", BatchSampler)


@BATCHING.register("random")
@dataclass
class RandomBatches(BatchSampler):
    """Epoch-wise shuffles; ``bucket=B`` sorts by length inside random buckets of B batches, then
    shuffles the batches (diverse batches, less padding)."""

    bucket: int = 0

    def __post_init__(self) -> None:
        if self.bucket < 0:
            raise ValueError("bucket must be >= 0")

    @property
    def wants_lengths(self) -> bool:
        return self.bucket > 0

    def indices(self, step: int, examples: Sequence[TrainExample]) -> np.ndarray:
        per_epoch = self.n // self.bs
        epoch, pos = divmod(step, per_epoch)
        order = np.random.default_rng([self.seed, epoch]).permutation(self.n)
        if self.bucket and self.lengths is not None:
            size = self.bucket * self.bs
            order = np.concatenate(
                [b[np.argsort(-self.lengths[b], kind="stable")] for b in np.split(order, range(size, self.n, size))]
            )
            batches = order[: per_epoch * self.bs].reshape(per_epoch, self.bs)
            return batches[np.random.default_rng([self.seed, epoch, 1]).permutation(per_epoch)[pos]]
        return order[pos * self.bs : (pos + 1) * self.bs]


@BATCHING.register("nodup")
@dataclass
class NoDupBatches(BatchSampler):
    """Random batches in which no document appears twice."""

    _epoch_cache: dict[int, list[np.ndarray]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def indices(self, step: int, examples: Sequence[TrainExample]) -> np.ndarray:
        per_epoch = self.n // self.bs
        epoch, pos = divmod(step, per_epoch)
        if epoch not in self._epoch_cache:
            self._epoch_cache = {epoch: self._epoch(epoch, examples)}
        batches = self._epoch_cache[epoch]
        return batches[pos % len(batches)]

    def _epoch(self, epoch: int, examples: Sequence[TrainExample]) -> list[np.ndarray]:
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
                    rest.extend(queue[j + 1 :])
                    break
            if len(batch) < self.bs:
                break  # the last, incomplete batch is dropped (as in random batching)
            batches.append(np.array(batch))
            waiting, order = rest, []
        if not batches:
            raise RankwiseError(f"batching 'nodup': no batch of {self.bs} examples without a repeated document")
        return batches


@BATCHING.register("tas")
@dataclass
class TasBatches(BatchSampler):
    """TAS-Balanced: each batch from one k-means cluster of the queries; balanced margin bins."""

    embeds_queries: ClassVar[bool] = True
    clusters: int = 64
    balanced: bool = True
    bins: int = 10
    assign: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.clusters < 1 or self.bins < 1:
            raise ValueError("clusters and bins must be >= 1")

    def needs_embeddings(self, step: int) -> bool:
        return self.assign is None

    def cluster(self, step: int, query_embeddings: np.ndarray) -> None:
        self.assign = kmeans(query_embeddings, self.clusters, self.seed)

    def indices(self, step: int, examples: Sequence[TrainExample]) -> np.ndarray:
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

    def choose_negatives(self) -> ChooseNegatives | None:
        """TAS-Balanced's margin-bin choice of hard negatives, for examples with teacher scores."""
        if not self.balanced:
            return None
        bins = self.bins

        def choose(take: int, ex: TrainExample, rng: np.random.Generator) -> list[int]:
            if ex.scores is None:
                return list(rng.choice(len(ex.negatives), size=take, replace=False))
            margins = max(ex.scores.positives) - np.asarray(ex.scores.negatives)
            edges = np.linspace(margins.min(), margins.max(), bins + 1)
            which = np.clip(np.digitize(margins, edges[1:-1]), 0, bins - 1)
            chosen: list[int] = []
            for _ in range(take):
                open_bins = [
                    b for b in range(bins) if any(which[j] == b and j not in chosen for j in range(len(margins)))
                ]
                b = open_bins[int(rng.integers(len(open_bins)))]
                members = [j for j in range(len(margins)) if which[j] == b and j not in chosen]
                chosen.append(members[int(rng.integers(len(members)))])
            return chosen

        return choose

    def state_dict(self) -> dict[str, Any]:
        return {"assign": self.assign}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.assign = state["assign"]


@BATCHING.register("ngame")
@dataclass
class NgameBatches(BatchSampler):
    """NGAME: batches of neighbouring queries, re-clustered with the current model every ``every`` steps."""

    embeds_queries: ClassVar[bool] = True
    every: int = 100
    cluster_size: int = 8
    order: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)
    order_start: int = field(default=0, init=False, compare=False)
    last_refresh: int = field(default=-1, init=False, compare=False)

    def __post_init__(self) -> None:
        if self.every < 1 or self.cluster_size < 1:
            raise ValueError("every and cluster_size must be >= 1")

    def needs_embeddings(self, step: int) -> bool:
        return self.last_refresh < 0 or step - self.last_refresh >= self.every

    def cluster(self, step: int, query_embeddings: np.ndarray) -> None:
        k = max(1, self.n // self.cluster_size)
        assign = kmeans(query_embeddings, k, self.seed + step)
        rng = np.random.default_rng([self.seed, 7, step])
        clusters = [np.flatnonzero(assign == c) for c in rng.permutation(int(assign.max()) + 1)]
        self.order = np.concatenate([rng.permutation(c) for c in clusters if len(c)])
        self.order_start = self.last_refresh = step

    def indices(self, step: int, examples: Sequence[TrainExample]) -> np.ndarray:
        per = len(self.order) // self.bs
        pos = (step - self.order_start) % per
        return self.order[pos * self.bs : (pos + 1) * self.bs]

    def state_dict(self) -> dict[str, Any]:
        return {"order": self.order, "order_start": self.order_start, "last_refresh": self.last_refresh}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.order, self.order_start, self.last_refresh = state["order"], state["order_start"], state["last_refresh"]


@BATCHING.register("mix")
@dataclass
class MixBatches(BatchSampler):
    """Dataset mixing: every batch is drawn from one training set (``TrainExample.source``, set by
    :func:`rankwise.data.examples.mix_sources`), so in-batch negatives stay in domain. ``mode``:
    ``proportional`` (a set is chosen with probability proportional to its size, seeded by the step)
    or ``round-robin`` (the sets in turn). Within a set, batches follow epoch-wise shuffles of it."""

    mode: str = "proportional"
    _groups: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False, compare=False)
    _drawn: tuple[int, dict[str, int]] = field(default=(0, {}), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.mode not in ("proportional", "round-robin"):
            raise ValueError(f"mode {self.mode!r}: expected proportional or round-robin")

    def _group(self, examples: Sequence[TrainExample]) -> dict[str, np.ndarray]:
        if not self._groups:
            names = sorted({ex.source or "" for ex in examples})
            self._groups = {n: np.array([i for i, ex in enumerate(examples) if (ex.source or "") == n]) for n in names}
            small = [f"{n or '(untagged)'} has {len(g)}" for n, g in self._groups.items() if len(g) < self.bs]
            if small:
                raise RankwiseError(
                    f"batching 'mix': every set needs a batch of {self.bs} examples; " + ", ".join(small)
                )
        return self._groups

    def _source(self, step: int, names: list[str], sizes: np.ndarray) -> str:
        if self.mode == "round-robin":
            return names[step % len(names)]
        return names[int(np.random.default_rng([self.seed, step, 7]).choice(len(names), p=sizes / sizes.sum()))]

    def _count_before(self, step: int, names: list[str], sizes: np.ndarray) -> dict[str, int]:
        """How many batches each set gave before ``step`` (a function of seed and step: resumes exactly)."""
        start, counts = self._drawn if self._drawn[0] <= step else (0, {})
        counts = dict(counts)
        for t in range(start, step):
            name = self._source(t, names, sizes)
            counts[name] = counts.get(name, 0) + 1
        self._drawn = (step, counts)
        return counts

    def indices(self, step: int, examples: Sequence[TrainExample]) -> np.ndarray:
        groups = self._group(examples)
        names = list(groups)
        sizes = np.array([len(groups[n]) for n in names], dtype=np.float64)
        name = self._source(step, names, sizes)
        k = self._count_before(step, names, sizes).get(name, 0)  # this set's k-th batch
        group = groups[name]
        per_epoch = len(group) // self.bs
        epoch, pos = divmod(k, per_epoch)
        order = np.random.default_rng([self.seed, names.index(name), epoch]).permutation(len(group))
        return group[order[pos * self.bs : (pos + 1) * self.bs]]


def length_bucketed(sampler: BatchSampler, bucket: int) -> BatchSampler:
    """``length_bucket`` of the config applied to the sampler (random batching only)."""
    if not bucket:
        return sampler
    if not isinstance(sampler, RandomBatches):
        raise ConfigError(f"length_bucket applies to random batching, not {str(sampler)!r}")
    return RandomBatches(bucket=bucket)

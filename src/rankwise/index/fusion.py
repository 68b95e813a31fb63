"""Fusion of several rankings of the same queries into one (hybrid retrieval).

Each run's scores for a query are first normalised per query, then combined per document:

* ``rrf`` (Cormack, Clarke & Buettcher, SIGIR 2009): s(d) = sum_i w_i / (k + rank_i(d)), the ranks
  1-based within each run (descending score, ties by descending docid as trec_eval ranks); a
  document a run lacks adds nothing. Normalisation does not apply (ranks only).
* ``combsum`` (Fox & Shaw, TREC-2 1994): s(d) = sum_i w_i n_i(d), a missing document counting 0
  (with weights: ranx's ``wsum``).
* ``combmnz`` (Fox & Shaw 1994): combsum times the number of runs that retrieved d.

Normalisations (per query, over the documents that run retrieved), as ranx defines them:
``min-max`` (s - min) / (max - min); ``z-score`` (s - mean) / std (ranx's ``zmuv``); ``sum``
(s - min) / sum(s - min); ``max`` s / max; ``none``. Every denominator is floored at 1e-9, as in
ranx, so a query with one document or all scores equal gets 0s, not a division by zero.

:meth:`Fusion.tune` chooses the weights (a grid over the simplex) and, for RRF, k on a dev split.
:class:`FusedStage` is a first stage built from other first stages, usable wherever one is.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from rankwise.data.trec import Run
from rankwise.errors import ConfigError

METHODS = ("rrf", "combsum", "combmnz")
NORMS = ("min-max", "z-score", "sum", "max", "none")
_FLOOR = 1e-9  # ranx's denominator floor


def normalize_array(s: np.ndarray, norm: str) -> np.ndarray:
    """One query's scores (an array) normalised as ``norm`` says (module docstring)."""
    s = np.asarray(s, dtype=np.float64)
    if norm == "none" or not len(s):
        return s
    if norm == "min-max":
        return (s - s.min()) / max(s.max() - s.min(), _FLOOR)
    if norm == "z-score":
        return (s - s.mean()) / max(s.std(), _FLOOR)
    if norm == "sum":
        return (s - s.min()) / max(s.sum() - s.min() * len(s), _FLOOR)
    if norm == "max":
        return s / max(s.max(), _FLOOR)
    raise ConfigError(f"norm={norm}: choose one of {', '.join(NORMS)}", param="norm")


def normalize(scores: Mapping[str, float], norm: str) -> dict[str, float]:
    """One query's scores, by document, normalised as ``norm`` says."""
    s = np.fromiter(scores.values(), dtype=np.float64, count=len(scores))
    return dict(zip(scores, normalize_array(s, norm).tolist()))


def ranks(scores: Mapping[str, float]) -> dict[str, int]:
    """1-based ranks: descending score, ties by descending docid (trec_eval's order)."""
    order = sorted(scores, key=lambda d: (scores[d], d), reverse=True)
    return {d: i + 1 for i, d in enumerate(order)}


@dataclass(frozen=True)
class Fusion:
    """How to fuse runs: ``method`` (rrf, combsum, combmnz), ``norm`` (ignored by rrf), one weight
    per run (None: all 1), RRF's ``k``, and ``depth`` (how many fused documents to keep a query)."""

    method: str = "rrf"
    norm: str = "min-max"
    weights: tuple[float, ...] | None = None
    k: float = 60.0
    depth: int | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"method={self.method}: choose one of {', '.join(METHODS)}", param="method")
        if self.norm not in NORMS:
            raise ConfigError(f"norm={self.norm}: choose one of {', '.join(NORMS)}", param="norm")
        if self.weights is not None and any(w < 0 for w in self.weights):
            raise ConfigError(f"weights={self.weights}: expected non-negative weights", param="weights")

    def fuse_query(self, rankings: Sequence[Mapping[str, float]]) -> dict[str, float]:
        """One query's fused scores from each run's scores for it."""
        weights = self.weights or (1.0,) * len(rankings)
        if len(weights) != len(rankings):
            raise ConfigError(f"{len(weights)} weights for {len(rankings)} runs", param="weights")
        fused: dict[str, float] = {}
        hits: dict[str, int] = {}
        for w, scores in zip(weights, rankings):
            if self.method == "rrf":
                part = {d: 1.0 / (self.k + r) for d, r in ranks(scores).items()}
            else:
                part = normalize(scores, self.norm)
            for d, s in part.items():
                fused[d] = fused.get(d, 0.0) + w * s
                hits[d] = hits.get(d, 0) + 1
        if self.method == "combmnz":
            fused = {d: s * hits[d] for d, s in fused.items()}
        if self.depth is not None and len(fused) > self.depth:
            keep = sorted(fused, key=lambda d: (fused[d], d), reverse=True)[: self.depth]
            fused = {d: fused[d] for d in keep}
        return fused

    def fuse_aligned(self, scores: Sequence[np.ndarray]) -> np.ndarray:
        """Fused scores of one candidate list every run scored in full (``scores[r][i]``: run r's
        score of candidate i), as :meth:`fuse_query` gives them, without keys; rank ties by position."""
        weights = self.weights or (1.0,) * len(scores)
        if len(weights) != len(scores):
            raise ConfigError(f"{len(weights)} weights for {len(scores)} runs", param="weights")
        total = np.zeros(len(scores[0]) if len(scores) else 0)
        for w, s in zip(weights, scores):
            s = np.asarray(s, dtype=np.float64)
            if self.method == "rrf":
                rank = np.empty(len(s))
                rank[np.argsort(-s, kind="stable")] = np.arange(1, len(s) + 1)
                total += w / (self.k + rank)
            else:
                total += w * normalize_array(s, self.norm)
        return total * len(scores) if self.method == "combmnz" else total  # every run holds every candidate

    def fuse(self, runs: Sequence[Mapping[str, Mapping[str, float]]]) -> Run:
        """The fused run over every query any run has (a run lacking a query contributes nothing)."""
        queries = dict.fromkeys(q for run in runs for q in run)
        return {q: self.fuse_query([run.get(q, {}) for run in runs]) for q in queries}

    @classmethod
    def tune(
        cls,
        runs: Sequence[Mapping[str, Mapping[str, float]]],
        qrels: Mapping[str, Mapping[str, int]],
        *,
        methods: Sequence[str] = ("rrf",),
        norms: Sequence[str] = ("min-max",),
        step: float = 0.1,
        ks: Sequence[float] = (10, 60, 100),
        metric: str = "ndcg@10",
        depth: int | None = None,
    ) -> TunedFusion:
        """The best fusion of ``runs`` (dev runs) for ``metric`` on ``qrels`` (dev judgements): every
        method x norm x weights on the simplex grid of ``step`` (x k for rrf). Ties keep the first
        candidate, so equal weights win over a skewed grid point that scores the same."""
        from rankwise.metrics import evaluate

        trials: list[tuple[Fusion, float]] = []
        for method in methods:
            for norm, weights in itertools.product(norms if method != "rrf" else ("none",), simplex(len(runs), step)):
                for k in ks if method == "rrf" else (60.0,):
                    fusion = cls(method, norm, weights, float(k), depth)
                    trials.append((fusion, evaluate(qrels, fusion.fuse(runs), [metric])[metric]))
        best = max(trials, key=lambda t: t[1])  # max keeps the first of equals
        return TunedFusion(best[0], metric, best[1], len(trials))


def simplex(n: int, step: float) -> list[tuple[float, ...]]:
    """Weights for ``n`` runs on the grid of ``step`` that sum to 1, equal weights first."""
    units = round(1 / step)
    if abs(units * step - 1) > 1e-9:
        raise ConfigError(f"step={step}: expected 1/step to be a whole number", param="step")
    equal = (round(1 / n, 12),) * n
    grid = [tuple(c / units for c in combo) for combo in itertools.product(range(units + 1), repeat=n)]
    return [equal] + [w for w in grid if sum(w) > 0 and abs(sum(w) - 1) < 1e-9 and w != equal]


@dataclass(frozen=True)
class TunedFusion:
    """:meth:`Fusion.tune`'s choice: the fusion, the dev metric and its value, how many were tried."""

    fusion: Fusion
    metric: str
    dev_value: float
    tried: int


@dataclass
class FusedStage:
    """A first stage fusing other first stages: each searches ``depth_each`` (default: the
    pipeline's depth) and the fused top ``depth`` is returned. Name: ``fuse(method: a+b)``."""

    stages: Sequence
    fusion: Fusion = field(default_factory=Fusion)
    depth_each: int | None = None
    name: str = ""

    def __post_init__(self) -> None:
        from rankwise.index.rerank import _as_first

        if len(self.stages) < 2:
            raise ConfigError("fusion needs at least two first stages", param="stages")
        self.stages = [_as_first(s) for s in self.stages]
        self.name = self.name or f"fuse({self.fusion.method}: {'+'.join(s.name for s in self.stages)})"

    def prepare(self, dataset) -> None:
        for stage in self.stages:
            stage.prepare(dataset)

    def search(self, qid: str, query: str, depth: int) -> dict[str, float]:
        each = [s.search(qid, query, self.depth_each or depth) for s in self.stages]
        return replace(self.fusion, depth=depth).fuse_query(each)


def parse_fusion(text: str) -> Fusion:
    """``"rrf"``, ``"rrf:k=20"``, ``"combsum:norm=z-score,weights=0.3/0.7"`` -> a :class:`Fusion`."""
    from rankwise.spec import parse_options, parse_term

    term = parse_term(text, "fusion")
    params = dict(term.params)
    weights = None
    if "weights" in params:
        try:
            weights = tuple(float(w) for w in params.pop("weights").split("/"))
        except ValueError:
            raise ConfigError(f"fusion: weights {text!r}: expected numbers joined by '/', e.g. 0.3/0.7") from None
    if term.variant is not None:
        params.setdefault("norm", term.variant)
    if term.name not in METHODS:
        raise ConfigError(f"fusion: unknown method {term.name!r}; choose one of {', '.join(METHODS)}")
    return parse_options("fusion", params, Fusion, method=term.name, weights=weights)


class FusedRetriever:
    """Mining's retriever interface (:class:`~rankwise.index.retrieve.Retriever`) over several
    retrievers of one corpus, fused per query by ``fusion``: each searches ``depth_each`` (default
    the asked depth), and the fused top ``depth`` comes back as row indices. ``score(state, rows)``
    gives rows' fused scores with each retriever's exact score of those rows added to its list
    (so a positive none of them retrieved still gets the score its exact scores earn)."""

    def __init__(self, retrievers: Sequence, fusion: Fusion | None = None, depth_each: int | None = None) -> None:
        if len(retrievers) < 2:
            raise ConfigError("fusion needs at least two retrievers", param="retrievers")
        ids = list(retrievers[0].ids)
        if any(list(r.ids) != ids for r in retrievers[1:]):
            raise ConfigError("fused retrievers must index the same corpus in the same order", param="retrievers")
        self.retrievers, self.ids = list(retrievers), ids
        self.fusion, self.depth_each = fusion or Fusion(), depth_each

    def search(self, queries: Sequence[str], depth: int, *, states: bool = True) -> tuple[np.ndarray, np.ndarray, list]:
        each = [r.search(queries, self.depth_each or depth, states=states) for r in self.retrievers]
        idx = np.full((len(queries), depth), -1, dtype=np.int64)
        scores = np.full((len(queries), depth), -np.inf, dtype=np.float32)
        out_states = []
        for q in range(len(queries)):
            lists = [{int(j): float(s) for j, s in zip(i[q], s_[q]) if j >= 0} for i, s_, _ in each]
            fused = replace(self.fusion, depth=depth).fuse_query(lists)
            top = sorted(fused, key=lambda j: (fused[j], j), reverse=True)
            idx[q, : len(top)] = top
            scores[q, : len(top)] = [fused[j] for j in top]
            out_states.append((lists, [st[q] for _, _, st in each]) if states else None)
        return idx, scores, out_states

    def score(self, state, rows: Sequence[int]) -> np.ndarray:
        lists, sub_states = state
        augmented = []
        for retriever, ranked, sub in zip(self.retrievers, lists, sub_states):
            exact = retriever.score(sub, list(rows))
            augmented.append({**ranked, **{int(r): float(s) for r, s in zip(rows, exact)}})
        fused = replace(self.fusion, depth=None).fuse_query(augmented)
        return np.array([fused[int(r)] for r in rows], dtype=np.float64)

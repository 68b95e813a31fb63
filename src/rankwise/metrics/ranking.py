"""Ranking metrics equal to trec_eval, vectorised over all queries at once.

Metrics (names are case-insensitive; ``@k`` cuts the ranking at k):

============== ===================================================== ==================
name           definition                                            trec_eval measure
============== ===================================================== ==================
ndcg[@k]       sum gain/log2(rank+1), gain = grade, over the ideal   ndcg, ndcg_cut_k
ndcg_exp[@k]   the same with gain 2^grade - 1 (Burges et al., 2005)  (none)
mrr[@k]        1 / rank of the first relevant document               recip_rank (cut)
recall@k       relevant retrieved in the top k / relevant judged     recall_k
p@k            relevant retrieved in the top k / k                   P_k
map[@k]        mean over relevant docs of the precision at its rank  map, map_cut_k
rprec          precision at R, R = number of relevant judged         Rprec
success@k      1 if any relevant document is in the top k            success_k
judged@k       judged documents (any grade) in the top k / k         (ir_measures Judged)
============== ===================================================== ==================

Conventions, all trec_eval's:

* A run's documents are ranked by descending score; ties are broken by descending docid
  (byte order), as trec_eval sorts them. Scores must be finite.
* Scores are compared as 32-bit floats, because trec_eval stores them so: two scores that
  differ by less than float32 precision are a tie, broken by docid. ``float32=False`` ranks
  by the float64 values instead (then results can differ from trec_eval's on near-ties).
* A document is relevant when its grade >= 1; unjudged documents count as non-relevant.
* The ideal ranking for nDCG is built from all of the query's judgements, cut at the same k.
* P@k and judged@k divide by k even when fewer than k documents were retrieved.

Counting of queries: the mean is taken over the queries of the qrels. A qrels query with no
relevant document scores 0 on every metric but judged@k (pytrec_eval reports 0 so); a qrels
query missing from the run scores 0 (``trec_eval -c``). Run queries absent from the qrels are
ignored here; ``rankwise compare`` reports them as an error.

How it is fast: a metric only needs the rank of each *judged* document, never a sorted
ranking. The rank of a judged document with score s is the number of the query's scores above
s (a numba kernel sorts each query's scores once and binary-searches them, queries in
parallel) plus, only when scores tie, the tied documents with a larger docid (Python, rare).
Everything after that is a handful of ``bincount`` calls over the judged documents.
"""

from __future__ import annotations

import bisect
import itertools
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numba
import numpy as np

from rankwise.errors import ConfigError, DataError

DEFAULT_METRICS = ("ndcg@10", "mrr@10", "recall@100", "map")
MEASURES = ("ndcg", "ndcg_exp", "mrr", "recall", "p", "map", "rprec", "success", "judged")
_NAME = re.compile(r"^(ndcg_exp|ndcg|mrr|recall|p|map|rprec|success|judged)(?:@(\d+))?$")
_NEEDS_K = {"recall", "p", "success", "judged"}


def parse_metric(name: str) -> tuple[str, int | None]:
    m = _NAME.match(name.strip().lower())
    if not m:
        raise ConfigError(
            f"unknown metric {name!r}: expected one of "
            + ", ".join(f"{k}@k" if k in _NEEDS_K else f"{k}[@k]" for k in MEASURES)
        )
    measure, k = m.group(1), (int(m.group(2)) if m.group(2) else None)
    if k is not None and k < 1:
        raise ConfigError(f"metric {name!r}: k must be >= 1")
    if measure in _NEEDS_K and k is None:
        raise ConfigError(f"metric {name!r} needs a cut-off, e.g. {measure}@10")
    if measure == "rprec" and k is not None:
        raise ConfigError(f"metric {name!r}: rprec takes no cut-off (it cuts at the number of relevant documents)")
    return measure, k


def rank(scores: Mapping[str, float], *, float32: bool = True) -> list[str]:
    """Document ids in trec_eval's order: score (as float32) descending, then docid descending."""
    cast = np.float32 if float32 else float
    return [d for d, _ in sorted(scores.items(), key=lambda kv: (cast(kv[1]), kv[0]), reverse=True)]


# ------------------------------------------------------------------------------ kernel
@numba.njit(parallel=True, cache=True)
def _count_above(flat: np.ndarray, offsets: np.ndarray, pair_offsets: np.ndarray, pair_scores: np.ndarray):
    """For each judged pair: how many of its query's scores are > its score, and how many == it."""
    n_q = len(offsets) - 1
    above = np.zeros(len(pair_scores), dtype=np.int64)
    equal = np.zeros(len(pair_scores), dtype=np.int64)
    for q in numba.prange(n_q):
        p0, p1 = pair_offsets[q], pair_offsets[q + 1]
        if p1 == p0:
            continue
        row = flat[offsets[q] : offsets[q + 1]]
        n = len(row)
        if p1 - p0 <= 8:  # few judged documents: one pass each beats sorting the row
            for p in range(p0, p1):
                s = pair_scores[p]
                a = 0
                e = 0
                for v in row:
                    if v > s:
                        a += 1
                    elif v == s:
                        e += 1
                above[p] = a
                equal[p] = e
        else:
            srt = np.sort(row)
            for p in range(p0, p1):
                s = pair_scores[p]
                lo = np.searchsorted(srt, s, side="left")
                hi = np.searchsorted(srt, s, side="right")
                above[p] = n - hi
                equal[p] = hi - lo
    return above, equal


def _count_above_within_torch_threads(*arrays: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``_count_above`` on at most torch's thread count, which it leaves as it found it. numba's
    OpenMP pool resets the process's OpenMP thread count on its first run after torch's: a worker
    set to ``torch.set_num_threads(1)`` ran on 2 threads from its first evaluation on (a LETOR
    training that evaluates every 25 steps, two such workers on 2 cores: 6x slower)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return _count_above(*arrays)
    n = torch.get_num_threads()
    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    try:
        return _count_above(*arrays)
    finally:
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)


@dataclass
class _Judged:
    """Every judged document of every qrels query: its query index, grade and rank (-1 when not retrieved)."""

    qids: list[str]
    q: np.ndarray
    grade: np.ndarray
    rank: np.ndarray
    n_rel: np.ndarray


def _prepare(
    qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]], float32: bool = True
) -> _Judged:
    qids = list(qrels)
    rankings = [run.get(q) or {} for q in qids]
    lengths = np.fromiter((len(r) for r in rankings), dtype=np.int64, count=len(qids))
    offsets = np.zeros(len(qids) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.fromiter(
        itertools.chain.from_iterable(r.values() for r in rankings), dtype=np.float64, count=int(offsets[-1])
    )
    if not np.isfinite(flat).all():
        at = int(np.flatnonzero(~np.isfinite(flat))[0])
        qi = int(np.searchsorted(offsets, at, side="right") - 1)
        doc = list(rankings[qi])[at - offsets[qi]]
        raise DataError(
            f"query {qids[qi]!r}, document {doc!r}: score is {flat[at]} (scores must be finite)", field="score"
        )
    if float32:
        flat = flat.astype(np.float32).astype(np.float64)

    # judged documents, grouped by query; retrieved ones first get their score looked up
    jq, jgrade, jscore, jdoc = [], [], [], []
    for i, (qid, ranking) in enumerate(zip(qids, rankings)):
        for doc, grade in qrels[qid].items():
            jq.append(i)
            jgrade.append(grade)
            jscore.append(ranking.get(doc, np.nan))
            jdoc.append(doc)
    q = np.asarray(jq, dtype=np.int64)
    grade = np.asarray(jgrade, dtype=np.float64)
    score = np.asarray(jscore, dtype=np.float32 if float32 else np.float64).astype(np.float64)
    retrieved = ~np.isnan(score)
    rq, rscore = q[retrieved], score[retrieved]
    pair_offsets = np.zeros(len(qids) + 1, dtype=np.int64)
    np.cumsum(np.bincount(rq, minlength=len(qids)), out=pair_offsets[1:])
    above, equal = _count_above_within_torch_threads(flat, offsets, pair_offsets, rscore)
    ranks = above
    ret_idx = np.flatnonzero(retrieved)
    tied = np.flatnonzero(equal > 1)
    ranks[tied] += _larger_docids_tied(rankings, rq[tied], rscore[tied], [jdoc[int(ret_idx[p])] for p in tied], float32)
    rank_all = np.full(len(q), -1, dtype=np.int64)
    rank_all[retrieved] = ranks
    n_rel = np.bincount(q[grade >= 1], minlength=len(qids))
    return _Judged(qids, q, grade, rank_all, n_rel)


def _larger_docids_tied(
    rankings: list, qs: np.ndarray, scores: np.ndarray, docs: list[str], float32: bool
) -> np.ndarray:
    """For each tied judged document, how many documents of its ranking share its score and have a
    larger docid (trec_eval puts those first): each query's docids grouped by score and sorted once,
    then a binary search a document."""
    cast = np.float32 if float32 else float
    groups: dict[int, dict[float, list[str]]] = {}
    out = np.zeros(len(docs), dtype=np.int64)
    for n, (i, s, doc) in enumerate(zip(qs.tolist(), scores.tolist(), docs)):
        if i not in groups:
            by_score: dict[float, list[str]] = {}
            for d, v in rankings[i].items():
                by_score.setdefault(float(cast(v)), []).append(d)
            groups[i] = {k: sorted(v) for k, v in by_score.items()}
        same = groups[i][s]
        out[n] = len(same) - bisect.bisect_right(same, doc)
    return out


def _ideal_dcg(j: _Judged, k: int | None, gain: np.ndarray) -> np.ndarray:
    """DCG of each query's ideal ranking: its judged gains sorted descending, cut at k."""
    order = np.lexsort((-gain, j.q))
    gq, gg = j.q[order], gain[order]
    starts = np.searchsorted(gq, gq, side="left")
    pos = np.arange(len(gq)) - starts
    keep = gg > 0 if k is None else (gg > 0) & (pos < k)
    return np.bincount(gq[keep], gg[keep] / np.log2(pos[keep] + 2), minlength=len(j.qids))


def _per_query(j: _Judged, measure: str, k: int | None) -> np.ndarray:
    n_q = len(j.qids)
    ret = j.rank >= 0
    cut = ret if k is None else ret & (j.rank < k)
    rel = j.grade >= 1
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure in ("ndcg", "ndcg_exp"):
            gain = np.maximum(j.grade, 0) if measure == "ndcg" else np.exp2(np.maximum(j.grade, 0)) - 1
            dcg = np.bincount(j.q[cut], gain[cut] / np.log2(j.rank[cut] + 2), minlength=n_q)
            idcg = _ideal_dcg(j, k, gain)
            out = np.where(idcg > 0, dcg / idcg, 0.0)
        elif measure == "judged":
            return np.bincount(j.q[cut], minlength=n_q) / k  # type: ignore[operator]
        elif measure in ("recall", "p", "success"):
            hits = np.bincount(j.q[cut & rel], minlength=n_q).astype(np.float64)
            out = (
                hits / j.n_rel
                if measure == "recall"
                else (hits / k if measure == "p" else (hits > 0).astype(np.float64))
            )  # type: ignore[operator]
        elif measure == "rprec":
            sel = ret & rel & (j.rank < j.n_rel[j.q])
            out = np.bincount(j.q[sel], minlength=n_q) / j.n_rel
        elif measure == "mrr":
            first = np.full(n_q, np.iinfo(np.int64).max)
            np.minimum.at(first, j.q[cut & rel], j.rank[cut & rel])
            out = np.where(first < np.iinfo(np.int64).max, 1.0 / (first + 1.0), 0.0)
        else:  # map: precision at each relevant document's rank, summed, over all relevant judged
            sel = np.flatnonzero(cut & rel)
            order = sel[np.lexsort((j.rank[sel], j.q[sel]))]
            gq, gr = j.q[order], j.rank[order]
            pos = np.arange(len(gq)) - np.searchsorted(gq, gq, side="left")
            out = np.bincount(gq, (pos + 1) / (gr + 1.0), minlength=n_q) / j.n_rel
    return np.where(j.n_rel > 0, out, 0.0)


def evaluate_arrays(
    qrels: Mapping[str, Mapping[str, int]],
    run: Mapping[str, Mapping[str, float]],
    metrics: Iterable[str] = DEFAULT_METRICS,
    *,
    float32: bool = True,
) -> tuple[list[str], dict[str, np.ndarray]]:
    """``(qids, {metric: values})``: one array per metric, aligned with the qrels' query order."""
    parsed = {m: parse_metric(m) for m in metrics}
    j = _prepare(qrels, run, float32)
    return j.qids, {name: _per_query(j, measure, k) for name, (measure, k) in parsed.items()}


def evaluate_per_query(
    qrels: Mapping[str, Mapping[str, int]],
    run: Mapping[str, Mapping[str, float]],
    metrics: Iterable[str] = DEFAULT_METRICS,
    *,
    float32: bool = True,
) -> dict[str, dict[str, float]]:
    """``{metric: {qid: value}}`` for every query of ``qrels``."""
    qids, values = evaluate_arrays(qrels, run, metrics, float32=float32)
    return {m: dict(zip(qids, v.tolist())) for m, v in values.items()}


def evaluate(
    qrels: Mapping[str, Mapping[str, int]],
    run: Mapping[str, Mapping[str, float]],
    metrics: Iterable[str] = DEFAULT_METRICS,
    *,
    float32: bool = True,
) -> dict[str, float]:
    """Mean of each metric over the qrels queries (see the module docstring). Empty qrels are
    refused (there is nothing to average); a query the run lacks scores 0, as with ``trec_eval -c``
    (:func:`rankwise.data.runs.coverage_note` says how many)."""
    if not qrels:
        from rankwise.errors import RankwiseError

        raise RankwiseError("no judged queries: the qrels are empty")
    qids, values = evaluate_arrays(qrels, run, metrics, float32=float32)
    return {m: (float(v.mean()) if len(qids) else 0.0) for m, v in values.items()}

"""Hard-negative mining: retrieve each training query's top documents with BM25 (bm25s) or a
dense model (exact faiss search), keep a rank window, guard against false negatives, sample,
and write training JSONL (id form) with the retriever's ranks and scores and, with a teacher,
the teacher's scores for distillation.

Per query (positives P = its documents with grade >= 1; judged grade-0 documents are confirmed
negatives and stay candidates):

1. retrieve ranks 1..b; candidates are ranks a..b (``window="a-b"``, 1-based, inclusive; skip
   the top r with ``window=(r+1)-b``) minus P;
2. margin guard against unlabelled positives, against the *lowest-scoring* positive p_min
   (a candidate that the retriever puts near or above any positive is suspect):
   absolute ``s(n) <= s(p_min) - margin``; relative ``s(n) <= s(p_min) * (1 - margin)``
   (sentence-transformers' ``absolute_margin``/``relative_margin`` semantics);
3. with a teacher: the same guard on teacher scores (``teacher_margin``), after which the
   teacher's scores of the positives and of the kept negatives go into ``scores``;
4. sample ``k``: the first k by rank (``sampling=top``) or k at random (``uniform``, seeded per
   query so the result does not depend on chunking or resumption).

Resumable: queries are processed in chunks, each written atomically to ``OUT.partial/``, and the
dense corpus embeddings are cached there; a rerun skips finished chunks, and the final file is
written atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from rankwise.data.beir import Dataset
from rankwise.errors import ConfigError, DataError
from rankwise.io import atomic_path, write_text
from rankwise.progress import console, task
from rankwise.spec import parse_options, split_spec

log = logging.getLogger(__name__)
METHODS = ("bm25", "dense")


@dataclass
class MineOptions:
    method: str = "bm25"
    k: int = 7
    window: tuple[int, int] = (1, 100)
    sampling: str = "top"
    margin: float | None = None
    margin_mode: str = "absolute"
    teacher: str | None = None
    teacher_margin: float = 0.0
    model: str | None = None  # dense: the retriever (default: the packaged all-MiniLM-L6-v2)
    seed: int = 42
    max_length: int = 256
    code: bool = False  # BM25: split identifiers (read_file -> read file)
    chunk: int = 2048

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method {self.method!r}: expected one of {', '.join(METHODS)}")
        a, b = self.window
        if not 1 <= a <= b:
            raise ValueError(f"window {a}-{b}: expected 1 <= a <= b")
        if self.k < 1:
            raise ValueError("k must be >= 1")
        if self.sampling not in ("top", "uniform"):
            raise ValueError(f"sampling {self.sampling!r}: expected top or uniform")
        if self.margin_mode not in ("absolute", "relative"):
            raise ValueError(f"margin_mode {self.margin_mode!r}: expected absolute or relative")
        if self.margin is not None and self.margin < 0:
            raise ValueError("margin must be >= 0")

    @classmethod
    def parse(cls, spec: str, **fixed) -> "MineOptions":
        """``"bm25:k=7,window=10-100,sampling=uniform,margin=0.1"`` (the method is the name)."""
        name, params = split_spec(spec)
        return parse_options(f"negatives {spec!r}", params, cls, method=name, **fixed)


@dataclass
class MineStats:
    queries: int = 0
    skipped_no_positive: int = 0
    negatives: int = 0
    dropped_margin: int = 0
    dropped_teacher: int = 0
    short: int = 0  # queries left with fewer than k negatives
    seconds_encode: float = 0.0
    chunks_reused: int = 0
    warnings: list[str] = field(default_factory=list)


def _positives(dataset: Dataset, qid: str) -> set[str]:
    return {d for d, g in dataset.qrels.get(qid, {}).items() if g >= 1}


def _fingerprint(opts: MineOptions, dataset: Dataset, qids: list[str]) -> str:
    h = hashlib.sha256(json.dumps(asdict(opts), sort_keys=True, default=str).encode())
    h.update(str(len(dataset.corpus)).encode())
    for q in qids:
        h.update(q.encode())
    return h.hexdigest()[:16]


class _Retriever:
    """Top-b retrieval plus the exact scores of given documents, for one method."""

    def __init__(self, opts: MineOptions, dataset: Dataset, ids: list[str], cache: Path, show_progress: bool, model=None) -> None:
        self.ids, self.pos = ids, {d: i for i, d in enumerate(ids)}
        self.opts = opts
        texts = [dataset.corpus[d].full_text for d in ids]
        if opts.method == "bm25":
            from rankwise.index.bm25 import BM25Index

            self.bm25 = BM25Index(texts, ids, code=opts.code)
        else:
            import time

            from rankwise.index.flat import FlatIndex
            from rankwise.models import BiEncoder

            self.model = model or BiEncoder.load(opts.model, query_max_length=opts.max_length, doc_max_length=opts.max_length)
            emb_path = cache / "corpus-embeddings.npy"
            t0 = time.perf_counter()
            if emb_path.is_file():
                emb = np.load(emb_path)
            else:
                with task("encode corpus", len(texts), enabled=show_progress) as advance:
                    emb = self.model.encode(texts, "doc", batch_size=128, progress=advance)
                with atomic_path(emb_path) as tmp, open(tmp, "wb") as fh:
                    np.save(fh, emb)
            self.seconds_encode = time.perf_counter() - t0
            self.emb = emb
            self.index = FlatIndex(emb, ids)

    def search(self, queries: list[str], depth: int) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """(row indices [n, depth], scores [n, depth], full score vector or query embedding per query)."""
        if self.opts.method == "bm25":
            idx, scores = self.bm25.search(queries, depth)
            return idx, scores, [self.bm25.score_all(q) for q in queries]  # for the positives' exact scores
        q = self.model.encode(queries, "query", batch_size=128)
        idx, scores = self.index.search(q, depth)
        return idx, scores, list(q)

    def score_of(self, extra, rows: list[int]) -> np.ndarray:
        if self.opts.method == "bm25":
            return np.asarray(extra)[rows]
        return self.emb[rows] @ extra


def mine(
    dataset: Dataset,
    options: MineOptions,
    out: str | Path,
    *,
    lenient: bool = False,
    show_progress: bool = True,
    model=None,
    log_fn: Callable[[str], None] = console.print,
) -> MineStats:
    """Mine ``options.k`` negatives for every query of ``dataset.qrels`` with a positive and write
    ``out`` (JSONL, id form). ``model``: a loaded BiEncoder to mine with (dynamic refresh) instead
    of loading ``options.model``."""
    out = Path(out)
    stats = MineStats()
    qids = [q for q in dataset.qrels if q in dataset.queries]
    missing = [q for q in dataset.qrels if q not in dataset.queries]
    if missing:
        raise DataError(f"query {missing[0]!r} of the qrels is not in queries.jsonl ({len(missing)} such)", path=dataset.path, field="query-id")
    no_pos = [q for q in qids if not _positives(dataset, q)]
    if no_pos:
        if not lenient:
            raise DataError(f"query {no_pos[0]!r} has no positive (grade >= 1) to mine against ({len(no_pos)} such queries; "
                            "--lenient skips them)", path=dataset.path, field="query-id")
        stats.skipped_no_positive = len(no_pos)
        stats.warnings.append(f"skipped {len(no_pos)} queries without a positive")
        log.warning("mining: skipped %d queries without a positive", len(no_pos))
        qids = [q for q in qids if q not in set(no_pos)]
    ids = list(dataset.corpus)
    a, b = options.window
    if b > len(ids):
        raise ConfigError(f"negatives: window {a}-{b} goes beyond the corpus size ({len(ids)} documents)")
    teacher = None
    if options.teacher:
        from rankwise.negatives.teacher import load_teacher

        teacher = load_teacher(options.teacher)

    partial = out.parent / (out.name + ".partial")
    fp = _fingerprint(options, dataset, qids)
    if partial.is_dir() and (partial / "fingerprint").is_file() and (partial / "fingerprint").read_text() != fp:
        shutil.rmtree(partial)  # another run's leftovers: start over
    partial.mkdir(parents=True, exist_ok=True)
    write_text(partial / "fingerprint", fp)

    retriever = _Retriever(options, dataset, ids, partial, show_progress, model=model)
    stats.seconds_encode = getattr(retriever, "seconds_encode", 0.0)
    chunks = [qids[i : i + options.chunk] for i in range(0, len(qids), options.chunk)]
    with task(f"mine {options.method}", len(qids), enabled=show_progress) as advance:
        for ci, chunk in enumerate(chunks):
            shard = partial / f"chunk-{ci:05d}.jsonl"
            if shard.is_file():
                stats.chunks_reused += 1
                for row in (json.loads(x) for x in shard.read_text(encoding="utf-8").splitlines()):
                    _count(stats, row, options.k)
                advance(len(chunk))
                continue
            rows = _mine_chunk(dataset, chunk, options, retriever, teacher, stats)
            write_text(shard, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
            for row in rows:
                _count(stats, row, options.k)
            advance(len(chunk))
    with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for ci in range(len(chunks)):
            fh.write((partial / f"chunk-{ci:05d}.jsonl").read_text(encoding="utf-8"))
    stats.queries = len(qids)
    write_text(out.parent / (out.name + ".stats.json"), json.dumps(asdict(stats), indent=2))
    shutil.rmtree(partial, ignore_errors=True)
    log_fn(f"mined {stats.negatives} negatives for {stats.queries} queries ({options.method}, window {a}-{b}); "
           f"margin guard dropped {stats.dropped_margin}, teacher dropped {stats.dropped_teacher}; "
           f"{stats.short} queries have fewer than {options.k}")
    return stats


def _count(stats: MineStats, row: dict, k: int) -> None:
    stats.negatives += len(row["negative_ids"])
    stats.short += len(row["negative_ids"]) < k
    stats.dropped_margin += row["mined"]["dropped_margin"]
    stats.dropped_teacher += row["mined"].get("dropped_teacher", 0)


def _guard(neg: np.ndarray, pos_min: float, margin: float | None, mode: str) -> np.ndarray:
    if margin is None:
        return np.ones(len(neg), dtype=bool)
    limit = pos_min - margin if mode == "absolute" else pos_min * (1 - margin)
    return neg <= limit


def _mine_chunk(dataset: Dataset, qids: list[str], opts: MineOptions, retriever: _Retriever, teacher, stats: MineStats) -> list[dict]:
    a, b = opts.window
    texts = [dataset.queries[q] for q in qids]
    idx, scores, extra = retriever.search(texts, b)
    rows = []
    pending = []
    for i, qid in enumerate(qids):
        positives = sorted(_positives(dataset, qid))
        pos_rows = [retriever.pos[d] for d in positives if d in retriever.pos]
        if len(pos_rows) < len(positives):
            missing = next(d for d in positives if d not in retriever.pos)
            raise DataError(f"query {qid!r}: positive document {missing!r} is not in the corpus", path=dataset.path, field="corpus-id")
        pos_scores = retriever.score_of(extra[i], pos_rows)
        ranked = [(r + 1, int(j), float(s)) for r, (j, s) in enumerate(zip(idx[i], scores[i])) if j >= 0]
        pset = set(positives)
        window = [(r, j, s) for r, j, s in ranked if a <= r <= b and ids_of(retriever, j) not in pset]
        cand_scores = np.array([s for _, _, s in window], dtype=np.float64)
        keep = _guard(cand_scores, float(pos_scores.min()), opts.margin, opts.margin_mode)
        dropped_margin = int((~keep).sum())
        window = [w for w, k_ in zip(window, keep) if k_]
        rng = np.random.default_rng([opts.seed, int(hashlib.md5(qid.encode()).hexdigest()[:8], 16)])
        if opts.sampling == "uniform":
            order = rng.permutation(len(window))
            window = [window[o] for o in order]
        pos_rank = {ids_of(retriever, j): r for r, j, _ in ranked}
        row = {
            "query_id": qid,
            "positive_ids": positives,
            "negative_ids": [],
            "mined": {"method": opts.method, "dropped_margin": dropped_margin,
                      "positive_ranks": [pos_rank.get(d, b + 1) for d in positives],
                      "positive_scores": [float(s) for s in pos_scores],
                      "negative_ranks": [], "negative_scores": []},
        }
        # a teacher looks at up to 4k candidates (in sampling order), the rest need no scoring
        pool = window[: 4 * opts.k] if teacher is not None else window[: opts.k]
        pending.append((row, pool, positives))
        rows.append(row)
    if teacher is not None:
        docs = [[dataset.corpus[d].full_text for d in pos] + [dataset.corpus[ids_of(retriever, j)].full_text for _, j, _ in pool]
                for _, pool, pos in pending]
        teacher_scores = teacher.score_many([dataset.queries[r["query_id"]] for r, _, _ in pending], docs)
    for n, (row, pool, positives) in enumerate(pending):
        if teacher is not None:
            ts = np.asarray(teacher_scores[n], dtype=np.float64)
            tpos, tneg = ts[: len(positives)], ts[len(positives):]
            ok = tneg <= tpos.min() - opts.teacher_margin
            chosen, dropped = [], 0
            for p, t, o in zip(pool, tneg, ok):  # in sampling order, until k are accepted
                if len(chosen) == opts.k:
                    break
                if o:
                    chosen.append((p, t))
                else:
                    dropped += 1
            row["mined"]["dropped_teacher"] = dropped
            row["scores"] = {"positives": [float(x) for x in tpos], "negatives": [float(t) for _, t in chosen]}
            pool = [p for p, _ in chosen]
        row["negative_ids"] = [ids_of(retriever, j) for _, j, _ in pool]
        row["mined"]["negative_ranks"] = [r for r, _, _ in pool]
        row["mined"]["negative_scores"] = [s for _, _, s in pool]
    return rows


def ids_of(retriever: _Retriever, j: int) -> str:
    return retriever.ids[j]

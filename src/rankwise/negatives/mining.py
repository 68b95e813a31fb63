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
3. with a teacher: the same guard on teacher scores (``teacher_margin``; ``none`` keeps every
   candidate, GPL's way: its soft labels, not a filter, answer false negatives), after which the
   teacher's scores of the positives and of the kept negatives, times ``teacher_scale``, go into
   ``scores`` (a min-max fused ensemble's margins of up to 1 are several times a cosine student's:
   Margin-MSE toward them stretches the student's geometry instead of reordering it);
4. with ``fill_depth=D`` (D > b): a query that the guard leaves with fewer than ``k`` candidates
   takes the next guarded ones below the window, ranks b+1..D in rank order. Without it, a query
   whose only positive the retriever ranks below the window has every candidate above that
   positive, the guard drops them all, and it trains on no hard negative (SciFact's train split
   with BM25, ``window=1-30,margin=0``: 127 of 809 queries; 83 with ``fill_depth=100``);
5. sample ``k``: the first k by rank (``sampling=top``) or k at random (``uniform``, seeded per
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
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from rankwise.data.beir import Dataset
from rankwise.errors import ConfigError, DataError
from rankwise.index.retrieve import BM25Retriever, DenseRetriever, Retriever, corpus_texts, embeddings_in_cache
from rankwise.io import atomic_path, write_text
from rankwise.negatives.options import MineOptions
from rankwise.progress import console, task

log = logging.getLogger(__name__)


def options_dict(opts: MineOptions) -> dict:
    """The mining options alone (a strategy subclassing MineOptions carries run state too)."""
    return {f.name: getattr(opts, f.name) for f in fields(MineOptions)}


@dataclass
class MineStats:
    queries: int = 0
    skipped_no_positive: int = 0
    negatives: int = 0
    dropped_margin: int = 0
    dropped_teacher: int = 0
    short: int = 0  # queries left with fewer than k negatives
    empty: int = 0  # queries left with none (they train on in-batch negatives only)
    filled: int = 0  # queries that took negatives from below the window (``fill_depth``)
    seconds_encode: float = 0.0
    chunks_reused: int = 0
    warnings: list[str] = field(default_factory=list)

    def summary(self, k: int) -> str:
        """What the guards dropped and which queries are short of ``k`` (the end of mining's log line)."""
        filled = f", {self.filled} filled from below the window" if self.filled else ""
        return (
            f"margin guard dropped {self.dropped_margin}, teacher dropped {self.dropped_teacher}; "
            f"{self.short} queries have fewer than {k} ({self.empty} none){filled}"
        )

    @classmethod
    def total(cls, parts: list[MineStats]) -> MineStats:
        """The counts of mining's shares summed (data-parallel mining: one share per process)."""
        counts = {f.name: sum(getattr(p, f.name) for p in parts) for f in fields(cls) if f.name != "warnings"}
        return cls(**counts, warnings=[w for p in parts for w in p.warnings])


def _positives(dataset: Dataset, qid: str) -> set[str]:
    return {d for d, g in dataset.qrels.get(qid, {}).items() if g >= 1}


def _fingerprint(opts: MineOptions, dataset: Dataset, qids: list[str]) -> str:
    h = hashlib.sha256(json.dumps(options_dict(opts), sort_keys=True, default=str).encode())
    h.update(str(len(dataset.corpus)).encode())
    for q in qids:
        h.update(q.encode())
    return h.hexdigest()[:16]


SHARD = 4096  # documents per cached shard of corpus embeddings


def _encode_in_shards(model, texts: list[str], cache: Path, show_progress: bool) -> np.ndarray:
    """Corpus embeddings, each shard of :data:`SHARD` documents saved to ``cache`` as it finishes,
    so a mining run killed while encoding continues where it stopped."""
    parts = []
    with task("encode corpus", len(texts), enabled=show_progress) as advance:
        for n, start in enumerate(range(0, len(texts), SHARD)):
            path = cache / f"corpus-embeddings-{n:05d}.npy"
            chunk = texts[start : start + SHARD]
            if path.is_file():
                parts.append(np.load(path))
                advance(len(chunk))
                continue
            emb = model.encode(chunk, "doc", batch_size=128, progress=advance)
            with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                np.save(fh, emb)
            parts.append(emb)
    return np.concatenate(parts) if parts else np.zeros((0, model.dim), dtype=np.float32)


def _family_retriever(folder: str, dataset: Dataset, show_progress: bool) -> tuple[Retriever, float] | None:
    """A retrieving family's own first stage (learned sparse, multi-vector) for a model folder that
    holds one; None for a dual encoder's folder (mined with cached, sharded embeddings)."""
    from rankwise.families import find_family, load_model

    family = find_family(load_model(folder))
    if family is None or not family.retrieves or family.name == "bi-encoder":
        return None
    t0 = time.perf_counter()
    stage = family.first_stage(show_progress=show_progress)
    stage.prepare(dataset)
    return stage.retriever, time.perf_counter() - t0


def _retriever(
    opts: MineOptions,
    dataset: Dataset,
    cache: Path,
    show_progress: bool,
    model=None,
    embeddings: np.ndarray | None = None,
) -> tuple[Retriever, float]:
    """The mining retriever and the seconds spent encoding the corpus. Dense corpus embeddings come
    from ``embeddings`` (e.g. a dynamic refresh's fixed index), else are encoded in shards cached in
    ``cache`` (a resumed run reuses the finished ones)."""
    ids, texts = corpus_texts(dataset)
    if opts.method == "bm25":
        return BM25Retriever(ids, texts, code=opts.code), 0.0
    if opts.method == "fused":  # BM25 and the dense model, fused per query
        from dataclasses import replace

        from rankwise.index.fusion import FusedRetriever, parse_fusion

        dense, seconds = _retriever(replace(opts, method="dense"), dataset, cache, show_progress, model, embeddings)
        lexical = BM25Retriever(ids, texts, code=opts.code)
        return FusedRetriever([lexical, dense], parse_fusion(opts.fusion)), seconds
    if model is None and opts.model and Path(opts.model).is_dir():
        own = _family_retriever(opts.model, dataset, show_progress)
        if own is not None:
            return own
    from rankwise.models import BiEncoder

    model = model or BiEncoder.load(opts.model, query_max_length=opts.max_length, doc_max_length=opts.max_length)
    t0 = time.perf_counter()
    if embeddings is None:  # kept by an earlier step (a consistency filter, an evaluation), else encoded
        embeddings = embeddings_in_cache(model, texts)
    if embeddings is None:
        embeddings = _encode_in_shards(model, texts, cache, show_progress)
    retriever = DenseRetriever(model, ids, texts, embeddings=embeddings)
    return retriever, time.perf_counter() - t0


def mine(
    dataset: Dataset,
    options: MineOptions,
    out: str | Path,
    *,
    lenient: bool = False,
    show_progress: bool = True,
    model=None,
    embeddings: np.ndarray | None = None,
    log_fn: Callable[[str], None] = console.print,
) -> MineStats:
    """Mine ``options.k`` negatives for every query of ``dataset.qrels`` with a positive and write
    ``out`` (JSONL, id form). ``model``: a loaded BiEncoder to mine with (dynamic refresh) instead
    of loading ``options.model``; ``embeddings``: the corpus embeddings to search (rows in corpus
    order) instead of encoding the corpus with it."""
    out = Path(out)
    stats = MineStats()
    qids = _queries_to_mine(dataset, lenient, stats)
    (a, b), depth = _window(options, len(dataset.corpus), log_fn)
    teacher = None
    if options.teacher:
        from rankwise.negatives.teacher import load_teacher

        teacher = load_teacher(options.teacher, fusion=options.teacher_fusion)
        if hasattr(teacher, "prepare"):  # a teacher that needs the corpus (BM25, an ensemble with it)
            teacher.prepare(dataset)
    partial = out.parent / (out.name + ".partial")
    fp = _fingerprint(options, dataset, qids)
    if partial.is_dir() and (partial / "fingerprint").is_file() and (partial / "fingerprint").read_text() != fp:
        shutil.rmtree(partial)  # another run's leftovers: start over
    partial.mkdir(parents=True, exist_ok=True)
    write_text(partial / "fingerprint", fp)
    retriever, stats.seconds_encode = _retriever(options, dataset, partial, show_progress, model, embeddings)
    chunks = [qids[i : i + options.chunk] for i in range(0, len(qids), options.chunk)]
    mine_one = lambda chunk: _mine_chunk(dataset, chunk, options, (a, b), depth, retriever, teacher)  # noqa: E731
    _mine_chunks(chunks, partial, mine_one, stats, options, show_progress)
    with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for ci in range(len(chunks)):
            fh.write((partial / f"chunk-{ci:05d}.jsonl").read_text(encoding="utf-8"))
    stats.queries = len(qids)
    write_text(out.parent / (out.name + ".stats.json"), json.dumps(asdict(stats), indent=2))
    shutil.rmtree(partial, ignore_errors=True)
    deeper = f", filling down to rank {depth}" if depth > b else ""
    log_fn(
        f"mined {stats.negatives} negatives for {stats.queries} queries ({options.method}, window {a}-{b}{deeper}); "
        + stats.summary(options.k)
    )
    return stats


def _queries_to_mine(dataset: Dataset, lenient: bool, stats: MineStats) -> list[str]:
    """The judged queries with a positive; one without is an error, or with ``lenient`` counted and skipped."""
    qids = [q for q in dataset.qrels if q in dataset.queries]
    missing = [q for q in dataset.qrels if q not in dataset.queries]
    if missing:
        raise DataError(
            f"query {missing[0]!r} of the qrels is not in queries.jsonl ({len(missing)} such)",
            path=dataset.path,
            field="query-id",
        )
    no_pos = [q for q in qids if not _positives(dataset, q)]
    if not no_pos:
        return qids
    if not lenient:
        raise DataError(
            f"query {no_pos[0]!r} has no positive (grade >= 1) to mine against ({len(no_pos)} such queries; "
            "lenient=True skips them)",
            path=dataset.path,
            field="query-id",
        )
    stats.skipped_no_positive = len(no_pos)
    stats.warnings.append(f"skipped {len(no_pos)} queries without a positive")
    log.warning("mining: skipped %d queries without a positive", len(no_pos))
    return [q for q in qids if q not in set(no_pos)]


def _window(options: MineOptions, n_docs: int, log_fn: Callable[[str], None]) -> tuple[tuple[int, int], int]:
    """The rank window clipped to the corpus, and the search depth (the window's end or ``fill_depth``)."""
    a, b = options.window
    if a > n_docs:
        raise ConfigError(f"negatives: window {a}-{b} starts beyond the corpus size ({n_docs} documents)")
    if b > n_docs:  # e.g. the default 1-100 on a small corpus: every rank the corpus has
        log_fn(f"window {a}-{b} clipped to {a}-{n_docs}: the corpus has {n_docs} documents")
        b = n_docs
    return (a, b), min(max(options.fill_depth, b), n_docs)


def _mine_chunks(chunks, partial: Path, mine_one, stats: MineStats, options: MineOptions, show_progress: bool) -> None:
    """Each chunk of queries mined into its own shard file; a shard already there is reused (resume)."""
    with task(f"mine {options.method}", sum(map(len, chunks)), enabled=show_progress) as advance:
        for ci, chunk in enumerate(chunks):
            shard = partial / f"chunk-{ci:05d}.jsonl"
            if shard.is_file():
                stats.chunks_reused += 1
                rows = [json.loads(x) for x in shard.read_text(encoding="utf-8").splitlines()]
            else:
                rows = mine_one(chunk)
                write_text(shard, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
            for row in rows:
                _count(stats, row, options.k)
            advance(len(chunk))


def _count(stats: MineStats, row: dict, k: int) -> None:
    stats.negatives += len(row["negative_ids"])
    stats.short += len(row["negative_ids"]) < k
    stats.empty += not row["negative_ids"]
    stats.dropped_margin += row["mined"]["dropped_margin"]
    stats.dropped_teacher += row["mined"].get("dropped_teacher", 0)
    stats.filled += row["mined"].get("filled", 0) > 0


def _guard(neg: np.ndarray, pos_min: float, margin: float | None, mode: str) -> np.ndarray:
    if margin is None:
        return np.ones(len(neg), dtype=bool)
    limit = pos_min - margin if mode == "absolute" else pos_min * (1 - margin)
    return neg <= limit


def _mine_chunk(
    dataset: Dataset,
    qids: list[str],
    opts: MineOptions,
    window: tuple[int, int],
    depth: int,
    retriever: Retriever,
    teacher,
) -> list[dict]:
    idx, scores, extra = retriever.search([dataset.queries[q] for q in qids], depth)
    ids = retriever.ids
    row_of = {d: j for j, d in enumerate(ids)}
    pending = []
    for i, qid in enumerate(qids):
        positives = sorted(_positives(dataset, qid))
        missing = [d for d in positives if d not in row_of]
        if missing:
            raise DataError(
                f"query {qid!r}: positive document {missing[0]!r} is not in the corpus",
                path=dataset.path,
                field="corpus-id",
            )
        pos_scores = retriever.score(extra[i], [row_of[d] for d in positives])
        ranked = [(r + 1, int(j), float(s)) for r, (j, s) in enumerate(zip(idx[i], scores[i])) if j >= 0]
        pool, dropped_margin, filled = _pool(
            dataset, qid, positives, ranked, float(pos_scores.min()), ids, opts, window, depth, teacher is not None
        )
        pos_rank = {ids[j]: r for r, j, _ in ranked}
        row = {
            "query_id": qid,
            "positive_ids": positives,
            "negative_ids": [],
            "mined": {
                "method": opts.method,
                "dropped_margin": dropped_margin,
                **({"filled": filled} if depth > window[1] else {}),
                "positive_ranks": [pos_rank.get(d, depth + 1) for d in positives],
                "positive_scores": [float(s) for s in pos_scores],
                "negative_ranks": [],
                "negative_scores": [],
            },
        }
        pending.append((row, pool, positives))
    _finish_rows(dataset, pending, opts, ids, teacher)
    return [row for row, _, _ in pending]


def _pool(
    dataset: Dataset,
    qid: str,
    positives: list[str],
    ranked: list[tuple[int, int, float]],
    pos_min: float,
    ids: list[str],
    opts: MineOptions,
    window: tuple[int, int],
    depth: int,
    scored: bool,
) -> tuple[list[tuple[int, int, float]], int, int]:
    """A query's candidate negatives ``(rank, row, score)``: no positive (nor a twin of one), from the
    window's first rank, margin-guarded, in sampling order, filled from below the window in rank
    order when short; as many as a teacher looks at (4k) or k. With the number the margin dropped
    inside the window and the number filled."""
    a, b = window
    pset = set(positives)
    twins = {dataset.corpus[d].full_text for d in positives} if opts.same_text_same_doc else set()
    candidates = [
        (r, j, s)
        for r, j, s in ranked
        if a <= r and ids[j] not in pset and not (twins and dataset.corpus[ids[j]].full_text in twins)
    ]
    keep = _guard(np.array([s for _, _, s in candidates], dtype=np.float64), pos_min, opts.margin, opts.margin_mode)
    guarded = [c for c, k_ in zip(candidates, keep) if k_]
    inside = [c for c in guarded if c[0] <= b]
    dropped = sum(r <= b for r, _, _ in candidates) - len(inside)
    if opts.sampling == "uniform":
        rng = np.random.default_rng([opts.seed, int(hashlib.md5(qid.encode()).hexdigest()[:8], 16)])
        inside = [inside[o] for o in rng.permutation(len(inside))]
    need = 4 * opts.k if scored else opts.k  # a teacher looks at up to 4k candidates in sampling order
    filled = 0
    if len(inside) < opts.k and depth > b:
        below = [c for c in guarded if c[0] > b][: need - len(inside)]
        inside += below
        filled = len(below)
    return inside[:need], dropped, filled


def _positive_text(dataset: Dataset, qid: str, did: str) -> str:
    """What the teacher reads for a query's positive: the corpus document, or the text the dataset
    names for it (a pseudo-query's source less the query, the positive its student trains on)."""
    named = dataset.positive_texts.get(qid, {})
    return named[did] if did in named else dataset.corpus[did].full_text


def _finish_rows(dataset: Dataset, pending: list, opts: MineOptions, ids: list[str], teacher) -> None:
    """Each row's negatives from its pool: with a teacher, the first ``k`` in sampling order that it
    scores below its lowest positive minus ``teacher_margin`` (all pools scored in one call)."""
    if teacher is not None:
        docs = [
            [_positive_text(dataset, row["query_id"], d) for d in pos]
            + [dataset.corpus[ids[j]].full_text for _, j, _ in pool]
            for row, pool, pos in pending
        ]
        teacher_scores = teacher.score_many([dataset.queries[r["query_id"]] for r, _, _ in pending], docs)
    unguarded = opts.teacher_margin is None  # GPL: every candidate, labelled by the teacher
    for n, (row, pool, positives) in enumerate(pending):
        if teacher is not None:
            ts = np.asarray(teacher_scores[n], dtype=np.float64)
            tpos, tneg = ts[: len(positives)], ts[len(positives) :]
            ok = np.ones(len(tneg), dtype=bool) if unguarded else tneg <= tpos.min() - opts.teacher_margin
            chosen, dropped = [], 0
            for p, t, o in zip(pool, tneg, ok):  # in sampling order, until k are accepted
                if len(chosen) == opts.k:
                    break
                if o:
                    chosen.append((p, t))
                else:
                    dropped += 1
            row["mined"]["dropped_teacher"] = dropped
            c = opts.teacher_scale
            row["scores"] = {"positives": [c * float(x) for x in tpos], "negatives": [c * float(t) for _, t in chosen]}
            pool = [p for p, _ in chosen]
        row["negative_ids"] = [ids[j] for _, j, _ in pool]
        row["mined"]["negative_ranks"] = [r for r, _, _ in pool]
        row["mined"]["negative_scores"] = [s for _, _, s in pool]


def mine_negatives(
    dataset: Dataset,
    options: str | MineOptions = "bm25",
    out: str | Path | None = None,
    *,
    lenient: bool = True,
    show_progress: bool = False,
    log_fn: Callable[[str], None] = console.print,
) -> list:
    """Training examples of the split's judged queries with mined hard negatives (and the
    retriever's ranks and scores, and the teacher's scores with a teacher). ``options``: a
    :class:`MineOptions` or a spec such as ``"bm25:k=7,window=1-30"``; ``out``: also keep the
    JSONL (otherwise a temporary file)."""
    import tempfile

    from rankwise.data.examples import load_examples

    if isinstance(options, str):
        from rankwise.negatives.strategies import NEGATIVES, MinedNegatives

        parsed = NEGATIVES.create(options)
        if type(parsed) is not MinedNegatives:
            raise ConfigError(f"mine {options!r}: expected bm25:... or dense:...")
        options = parsed
    with tempfile.TemporaryDirectory(prefix="rankwise-mine-") as tmp:
        path = Path(out) if out is not None else Path(tmp) / "negatives.jsonl"
        mine(dataset, options, path, lenient=lenient, show_progress=show_progress, log_fn=log_fn)
        return load_examples(path, dataset)

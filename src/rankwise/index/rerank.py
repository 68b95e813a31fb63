"""Retrieve, then rerank: a first stage gives each query its top ``depth`` documents, a second
stage re-scores them.

First stages: :class:`DenseStage` (a :class:`~rankwise.models.BiEncoder` over an exact index),
:class:`BM25Stage`, :class:`RunFileStage` (a TREC run from anywhere). Second stages:
:class:`CrossEncoderStage` (a :class:`~rankwise.models.CrossEncoder`) and :class:`PRFStage` (the
embedding second pass). :class:`Pipeline` runs them and times each stage per query.

Latency is measured per query, one query at a time, as a search service would answer it: the
first stage's query encoding and index search (the corpus is encoded once, offline, and not
counted), the second stage's scoring of that query's candidates.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from rankwise.data.beir import Dataset
from rankwise.data.trec import Run, read_run
from rankwise.errors import DataError, RankwiseError
from rankwise.index.retrieve import BM25Retriever, DenseRetriever, Retriever, cached_embeddings, corpus_texts
from rankwise.progress import task


class FirstStage(Protocol):
    name: str

    def prepare(self, dataset: Dataset) -> None: ...

    def search(self, qid: str, query: str, depth: int) -> dict[str, float]: ...


class SecondStage(Protocol):
    name: str

    def prepare(self, dataset: Dataset) -> None: ...

    def rerank(self, query: str, candidates: Sequence[tuple[str, float]]) -> dict[str, float]: ...


class _IndexStage:
    """A first stage over one of :mod:`rankwise.index.retrieve`'s retrievers."""

    name = ""
    retriever: Retriever

    def search(self, qid: str, query: str, depth: int) -> dict[str, float]:
        idx, scores, _ = self.retriever.search([query], depth, states=False)
        return {self.retriever.ids[int(j)]: float(s) for j, s in zip(idx[0], scores[0]) if j >= 0}


class DenseStage(_IndexStage):
    """A dual encoder over the split's corpus (embeddings cached on disk by weights and texts)."""

    def __init__(self, model, *, name: str | None = None, show_progress: bool = False) -> None:
        self.model, self.name, self.show_progress = model, name or model.name, show_progress

    def prepare(self, dataset: Dataset) -> None:
        ids, texts = corpus_texts(dataset)
        emb = cached_embeddings(self.model, texts, show_progress=self.show_progress)
        self.retriever = DenseRetriever(self.model, ids, texts, embeddings=emb)


class SparseStage(_IndexStage):
    """A learned sparse encoder over the split's corpus: exact inverted-index search, or Seismic's
    approximate index (``approximate=True``; its recall against exact search in ``recall``)."""

    def __init__(self, model, *, approximate: bool = False, name: str | None = None, show_progress: bool = False):
        self.model, self.approximate, self.show_progress = model, approximate, show_progress
        self.name = name or model.name

    def prepare(self, dataset: Dataset) -> None:
        from rankwise.index.sparse import SparseRetriever

        ids, texts = corpus_texts(dataset)
        self.retriever = SparseRetriever(
            self.model, ids, texts, approximate=self.approximate, show_progress=self.show_progress
        )


class MultiVectorStage(_IndexStage):
    """A multi-vector encoder over the split's corpus: exhaustive MaxSim, or a token-level IVF-PQ
    index with exact (or XTR's) re-scoring of its candidates."""

    def __init__(
        self,
        model,
        *,
        structure: str = "exact",
        xtr: bool = False,
        name: str | None = None,
        show_progress: bool = False,
    ) -> None:
        self.model, self.structure, self.xtr, self.show_progress = model, structure, xtr, show_progress
        self.name = name or model.name

    def prepare(self, dataset: Dataset) -> None:
        from rankwise.index.multi_vector import MultiVectorRetriever

        ids, texts = corpus_texts(dataset)
        self.retriever = MultiVectorRetriever(
            self.model, ids, texts, structure=self.structure, xtr=self.xtr, show_progress=self.show_progress
        )


class BM25Stage(_IndexStage):
    """BM25 (bm25s) over the split's corpus; ``code=True`` splits identifiers."""

    def __init__(self, *, code: bool = False) -> None:
        self.code, self.name = code, "bm25"

    def prepare(self, dataset: Dataset) -> None:
        ids, texts = corpus_texts(dataset)
        self.retriever = BM25Retriever(ids, texts, code=self.code)


class RunFileStage:
    """A TREC run file as the first stage: each query's documents as the run ranks them."""

    def __init__(self, path: str | Path, *, lenient: bool = False) -> None:
        self.path, self.name = Path(path), Path(path).name
        self.lines: dict[str, int] = {}
        self.run = read_run(self.path, lenient=lenient, lines=self.lines)
        self.max_depth = max(len(docs) for docs in self.run.values())

    def prepare(self, dataset: Dataset) -> None:
        for qid, docs in self.run.items():
            for did in docs:
                if did not in dataset.corpus:
                    raise DataError(
                        f"query {qid!r} names document {did!r}, which is not in the corpus of {dataset.path}",
                        path=self.path,
                        line=self._line_of(qid, did),
                        field="docid",
                    )

    def _line_of(self, qid: str, did: str) -> int | None:
        """The line naming ``did`` for ``qid`` (read again on the error path only)."""
        with open(self.path, encoding="utf-8", errors="replace") as fh:
            for n, line in enumerate(fh, start=1):
                parts = line.split()
                if len(parts) == 6 and parts[0] == qid and parts[2] == did:
                    return n
        return self.lines.get(qid)

    def search(self, qid: str, query: str, depth: int) -> dict[str, float]:
        ranked = sorted(self.run.get(qid, {}).items(), key=lambda kv: (-kv[1], kv[0]))
        return dict(ranked[:depth])


def interpolate(first: dict[str, float], second: dict[str, float], weight: float) -> dict[str, float]:
    """``(1 - weight) * z(second) + weight * z(first)`` over one query's candidates, where ``z``
    standardises a stage's scores within the list (mean 0, standard deviation 1).

    A reranker trained on little data keeps what the first stage knows this way (score
    interpolation, as in Wang et al., "BERT-based Dense Retrievers Require Interpolation with BM25",
    ICTIR 2021); z-scores put a logit and a cosine on one scale. ``weight=0`` keeps the second
    stage's own scores unchanged.

    >>> interpolate({"a": 0.9, "b": 0.1}, {"a": -1.0, "b": 3.0}, 0.75)
    {'a': 0.5, 'b': -0.5}
    """
    if not 0 <= weight <= 1:
        raise RankwiseError(f"interpolate: weight {weight} is outside [0, 1]")
    if weight == 0:
        return dict(second)
    ids = list(second)

    def z(scores: dict[str, float]) -> np.ndarray:
        v = np.array([scores[d] for d in ids], dtype=np.float64)
        sd = v.std()
        return (v - v.mean()) / sd if sd > 0 else v - v.mean()

    fused = (1 - weight) * z(second) + weight * z(first)
    return {d: float(s) for d, s in zip(ids, fused)}


class RerankStage:
    """A reranker (anything with ``rank(query, docs, batch_size=)``: a model or its family) scores
    each (query, candidate) pair; its raw score is the new score, or with ``interpolate=w`` its
    :func:`interpolate` with the first stage's scores at weight ``w``."""

    def __init__(self, model, *, batch_size: int = 64, interpolate: float = 0.0, name: str | None = None) -> None:
        if not 0 <= interpolate <= 1:
            raise RankwiseError(f"reranker: interpolate={interpolate} is outside [0, 1]")
        self.model, self.batch_size, self.name = model, batch_size, name or model.name
        self.weight = interpolate
        self.texts: dict[str, str] = {}

    def prepare(self, dataset: Dataset) -> None:
        self.texts = {did: doc.full_text for did, doc in dataset.corpus.items()}

    def rerank(self, query: str, candidates: Sequence[tuple[str, float]]) -> dict[str, float]:
        ids = [d for d, _ in candidates]
        scores = self.model.rank(query, [self.texts[d] for d in ids], batch_size=self.batch_size)
        own = {d: float(s) for d, s in zip(ids, scores)}
        return interpolate(dict(candidates), own, self.weight)


CrossEncoderStage = RerankStage  # a CrossEncoder's stage


@dataclass
class PRFStage:
    """Embedding second pass with pseudo-relevance feedback, in the spirit of E²Rank (Liu et al.,
    "Your Text Embedding can Also be an Effective and Efficient Listwise Reranker", 2025).

    The variant built here, with a dual encoder not trained for it (E²Rank fine-tunes its
    embedding model for listwise prompts; this uses the model as it is):

    - ``mode="text"`` (E²Rank's pseudo query): the query text followed by the texts of the first
      stage's top ``k`` candidates, joined by newlines, encoded as a query with the document
      length limit; each candidate is re-scored by the cosine (dot, for a normalising model) of
      its embedding with that pseudo-query embedding.
    - ``mode="vector"`` (Rocchio in embedding space): the refined query is
      ``normalize(q + beta * mean(d_1..d_k))`` of the query and top-``k`` document embeddings.

    The final score is ``(1 - alpha) * s_query + alpha * s_refined``: ``alpha=1`` ranks by the
    refined query alone (E²Rank's reranking), ``alpha=0`` keeps the plain dense scores. Candidate
    embeddings come from the corpus cache, so a query costs one extra encoding (text mode) or none.
    """

    model: object
    k: int = 3
    mode: str = "text"
    alpha: float = 0.5
    beta: float = 1.0
    name: str = "prf"
    emb: np.ndarray | None = field(default=None, init=False, repr=False)
    row: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    texts: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.mode not in ("text", "vector"):
            raise RankwiseError(f"prf mode {self.mode!r}: expected text or vector")
        if self.k < 1 or not 0 <= self.alpha <= 1:
            raise RankwiseError("prf: k must be >= 1 and alpha in [0, 1]")

    def prepare(self, dataset: Dataset) -> None:
        ids, texts = corpus_texts(dataset)
        self.emb = cached_embeddings(self.model, texts)
        self.row = {d: i for i, d in enumerate(ids)}
        self.texts = dict(zip(ids, texts))

    def rerank(self, query: str, candidates: Sequence[tuple[str, float]]) -> dict[str, float]:
        ranked = sorted(candidates, key=lambda c: -c[1])
        ids = [d for d, _ in ranked]
        d = self.emb[[self.row[x] for x in ids]]
        q = self.model.encode([query], "query")[0]
        top = ids[: self.k]
        if self.mode == "text":
            pseudo = "\n".join([query, *(self.texts[x] for x in top)])
            cfg = self.model.config
            kept = cfg.query_max_length
            cfg.query_max_length = cfg.doc_max_length
            try:
                refined = self.model.encode([pseudo], "query")[0]
            finally:
                cfg.query_max_length = kept
        else:
            refined = q + self.beta * d[: self.k].mean(0)
        refined = refined / max(float(np.linalg.norm(refined)), 1e-12) * max(float(np.linalg.norm(q)), 1e-12)
        scores = (1 - self.alpha) * (d @ q) + self.alpha * (d @ refined)
        return {x: float(s) for x, s in zip(ids, scores)}


@dataclass
class PipelineResult:
    first: Run  # the first stage's top ``depth``
    run: Run  # after the second stage (the first stage's run when there is none)
    latency_ms: dict[str, dict[str, float]]  # stage ("first", "second") -> {query id: milliseconds}

    def latency_summary(self) -> dict[str, float]:
        out = {}
        for stage, per_query in self.latency_ms.items():
            values = np.array(list(per_query.values()))
            if len(values):
                out[f"{stage}_ms_mean"] = float(values.mean())
                out[f"{stage}_ms_p95"] = float(np.percentile(values, 95))
        total = [sum(v.get(q, 0.0) for v in self.latency_ms.values()) for q in self.first]
        out["total_ms_mean"] = float(np.mean(total)) if total else 0.0
        return out


def _as_first(stage) -> FirstStage:
    from rankwise.families import find_family

    if isinstance(stage, (list, tuple)):  # several first stages: fused by reciprocal rank
        from rankwise.index.fusion import FusedStage

        return FusedStage(stage)
    family = find_family(stage)
    if family is not None:
        return family.first_stage()
    if isinstance(stage, str) and stage == "bm25":
        return BM25Stage()
    if isinstance(stage, (str, Path)) and Path(stage).is_file():
        return RunFileStage(stage)
    if isinstance(stage, (str, Path)):
        raise RankwiseError(
            f"first stage {str(stage)!r}: expected a BiEncoder, 'bm25', a TREC run file or a stage (any model whose family retrieves)"
        )
    return stage


def _as_second(stage) -> SecondStage | None:
    from rankwise.families import find_family

    family = find_family(stage)
    return family.second_stage() if family is not None else stage


class Pipeline:
    """``first`` retrieves the top ``depth`` of each query; ``second`` (optional) re-scores them.

    ``first``: a model whose family retrieves (a :class:`~rankwise.models.BiEncoder`), ``"bm25"``,
    a TREC run file, a stage, or a list of these (fused by RRF; a
    :class:`~rankwise.index.fusion.FusedStage` for another fusion); ``second``: a model whose family scores pairs (a
    :class:`~rankwise.models.CrossEncoder`, your own family's), a :class:`PRFStage`, or any stage.
    ``Pipeline(dual, reranker, depth=100).run(test)`` returns both stages' runs and latencies."""

    def __init__(self, first, second=None, *, depth: int = 100) -> None:
        if depth < 1:
            raise RankwiseError(f"depth {depth}: expected at least 1")
        self.first, self.second, self.depth = _as_first(first), _as_second(second), depth

    def search(self, dataset: Dataset, k: int | None = None, *, show_progress: bool = False) -> Run:
        """The final run (the pipeline's own depth; ``k`` is ignored)."""
        return self.run(dataset, show_progress=show_progress).run

    def run(self, dataset: Dataset, *, show_progress: bool = False) -> PipelineResult:
        """Run both stages over the split's queries (those with qrels when the split has them)."""
        queries = dataset.split_queries
        if self.depth > len(dataset.corpus):
            raise RankwiseError(
                f"depth {self.depth} is beyond the corpus: {dataset.path} ({dataset.split}) has "
                f"{len(dataset.corpus)} documents"
            )
        self.first.prepare(dataset)
        deepest = getattr(self.first, "max_depth", self.depth)
        if deepest < self.depth:
            raise RankwiseError(
                f"depth {self.depth} is beyond the first stage's results: {self.first.name} gives at most "
                f"{deepest} documents a query; rerank at depth {deepest} or give a deeper first stage"
            )
        if self.second is not None:
            self.second.prepare(dataset)
        first: Run = {}
        run: Run = {}
        latency: dict[str, dict[str, float]] = {"first": {}} | ({"second": {}} if self.second else {})
        with task("rerank" if self.second else "search", len(queries), enabled=show_progress) as advance:
            for qid, text in queries.items():
                t0 = time.perf_counter()
                first[qid] = self.first.search(qid, text, self.depth)
                latency["first"][qid] = 1000 * (time.perf_counter() - t0)
                if self.second is not None:
                    t0 = time.perf_counter()
                    run[qid] = self.second.rerank(text, list(first[qid].items())) if first[qid] else {}
                    latency["second"][qid] = 1000 * (time.perf_counter() - t0)
                advance(1)
        return PipelineResult(first, run if self.second is not None else first, latency)


def first_stage(
    retriever: str | None = None,
    *,
    run_file: str | Path | None = None,
    device: str | None = None,
    code: bool = False,
    fusion: str | None = None,
) -> FirstStage:
    """``run_file``: a TREC run; else ``retriever``: ``"bm25"`` or a retrieving model's folder or name
    (None: the default model), or several joined by ``+`` (``bm25+runs/dense``: fused as ``fusion``
    says, :func:`~rankwise.index.fusion.parse_fusion`; default ``rrf``)."""
    if run_file is not None:
        return RunFileStage(run_file)
    if retriever is not None and "+" in retriever and not Path(retriever).exists():
        from rankwise.index.fusion import FusedStage, parse_fusion

        parts = [first_stage(p.strip() or None, device=device, code=code) for p in retriever.split("+")]
        return FusedStage(parts, parse_fusion(fusion or "rrf"))
    if fusion is not None:
        raise RankwiseError(f"fusion={fusion}: fuses several first stages; join them with + in the retriever")
    if retriever == "bm25":
        return BM25Stage(code=code)
    from rankwise.families import family_of, load_model

    return family_of(load_model(retriever, device=device)).first_stage()


def second_stage(
    spec: str, *, first: FirstStage | None = None, device: str | None = None, interpolate: float = 0.0
) -> SecondStage:
    """A cross-encoder folder (its scores interpolated with the first stage's at weight
    ``interpolate``), ``llm:MODEL[,mode=...,window=...]`` (a causal LM or a saved LLM reranker, see
    :meth:`~rankwise.models.llm_reranker.LLMReranker.from_spec`), or ``prf[:k=3,mode=text,alpha=0.5,beta=1.0]``: the embedding second pass with
    the first stage's dual encoder (the default model when the first stage has none)."""
    from rankwise.spec import parse_options, parse_term

    if spec == "prf" or spec.startswith("prf:"):
        from rankwise.models import BiEncoder

        if interpolate:
            raise RankwiseError("interpolate applies to a cross-encoder; the prf second pass mixes by its own alpha")

        term = parse_term(spec, "reranker")
        model = getattr(first, "model", None)  # the first stage's dual encoder, else the default one
        model = model if model is not None else BiEncoder.load(None, device=device)
        return parse_options("reranker prf", term.params, PRFStage, model=model, name=spec)
    from rankwise.families import family_of, load_model

    if spec.startswith("llm:"):  # a causal LM as reranker, with its options
        from rankwise.models.llm_reranker import LLMReranker

        return family_of(LLMReranker.from_spec(spec, device=device)).second_stage(interpolate=interpolate)
    return family_of(load_model(spec, device=device, default="cross-encoder")).second_stage(interpolate=interpolate)

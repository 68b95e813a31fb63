"""Teachers that score (query, document) pairs, used by mining to filter false negatives and to
keep teacher scores for distillation, and by false-negative weighting. A model's family gives
its teacher (:meth:`~rankwise.families.Family.teacher`): a cross-encoder's logits, a dual
encoder's dot products, or any family's ``score``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rankwise.errors import RankwiseError


class Teacher:
    family: str = ""  # the model family whose scores these are
    name: str = ""

    def score(self, query: str, docs: Sequence[str]) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def score_many(self, queries: Sequence[str], docs: Sequence[Sequence[str]]) -> list[np.ndarray]:
        return [self.score(q, d) for q, d in zip(queries, docs)]


class FamilyTeacher(Teacher):
    """Any family's :meth:`~rankwise.families.Family.score` as teacher scores."""

    def __init__(self, family) -> None:
        self.source, self.family, self.name = family, family.name, family.label

    def score(self, query: str, docs: Sequence[str]) -> np.ndarray:
        return np.asarray(self.source.rank(query, list(docs)), dtype=np.float32)


class CrossEncoderTeacher(Teacher):
    """A reranker (:class:`~rankwise.models.CrossEncoder`: one trained here, or any sentence-transformers
    cross-encoder folder) scoring each (query, document) pair; its raw logits are the teacher scores."""

    family = "cross-encoder"

    def __init__(self, model, max_length: int | None = None, batch_size: int = 32) -> None:
        self.model = model
        if max_length:
            self.model.config.max_length = max_length
        self.name, self.batch_size = self.model.name, batch_size

    def score(self, query: str, docs: Sequence[str]) -> np.ndarray:
        return self.model.rank(query, docs, batch_size=self.batch_size)

    def score_many(self, queries: Sequence[str], docs: Sequence[Sequence[str]]) -> list[np.ndarray]:
        # one predict call over every pair: batches mix queries, so few are short of batch_size
        flat = self.model.predict([(q, d) for q, ds in zip(queries, docs) for d in ds], batch_size=self.batch_size)
        out, start = [], 0
        for ds in docs:
            out.append(flat[start : start + len(ds)])
            start += len(ds)
        return out


class BiEncoderTeacher(Teacher):
    """A dual encoder's dot products; all of a mining chunk's documents encoded in one pass. After
    :meth:`prepare` (mining calls it) each document is encoded once for all chunks: on a corpus that
    every chunk's candidates cover, that is one corpus pass instead of one a chunk."""

    family = "bi-encoder"
    MEMO_DOCS = 1_000_000  # embeddings kept at most (float32: 1.5 GB at 384 dimensions)

    def __init__(self, model) -> None:
        self.model, self.name = model, model.name
        self._memo: dict[str, np.ndarray] | None = None  # text -> embedding, once prepared
        self._memo_key = ""

    def prepare(self, dataset) -> None:
        """Keep documents' embeddings across calls from now on, starting from ``dataset``'s corpus
        embeddings where the embeddings cache holds them for this model (nothing is encoded here)."""
        from rankwise.index.retrieve import corpus_texts, embeddings_in_cache, embeddings_key

        self._memo, self._memo_key = {}, ""
        _, texts = corpus_texts(dataset)
        found = embeddings_in_cache(self.model, texts) if len(texts) <= self.MEMO_DOCS else None
        if found is not None:
            self._memo, self._memo_key = dict(zip(texts, found)), embeddings_key(self.model, [])

    def score(self, query: str, docs: Sequence[str]) -> np.ndarray:
        return self.score_many([query], [docs])[0].astype(np.float32)

    def _doc_embeddings(self, distinct: list[str], dim: int) -> np.ndarray:
        if not distinct:
            return np.zeros((0, dim), dtype=np.float32)
        if self._memo is None:
            return self.model.encode(distinct, "doc")
        from rankwise.index.retrieve import embeddings_key

        key = embeddings_key(self.model, [])  # weights and settings: a trained or reconfigured model starts over
        if key != self._memo_key:
            self._memo, self._memo_key = {}, key
        new = [d for d in distinct if d not in self._memo]
        fresh = dict(zip(new, self.model.encode(new, "doc"))) if new else {}
        if len(self._memo) + len(fresh) <= self.MEMO_DOCS:
            self._memo.update(fresh)
        return np.stack([self._memo[d] if d in self._memo else fresh[d] for d in distinct])

    def score_many(self, queries: Sequence[str], docs: Sequence[Sequence[str]]) -> list[np.ndarray]:
        # one encoding pass over all distinct documents, not one per query
        q = self.model.encode(list(queries), "query")
        distinct = list(dict.fromkeys(d for ds in docs for d in ds))
        emb = self._doc_embeddings(distinct, q.shape[1])
        pos = {t: i for i, t in enumerate(distinct)}
        return [
            emb[[pos[d] for d in ds]] @ q[i] if len(ds) else np.zeros(0, dtype=np.float32) for i, ds in enumerate(docs)
        ]


class BM25Teacher(Teacher):
    """BM25 scores as a teacher (a lexical member of an ensemble). It needs the corpus for its
    statistics: :meth:`prepare` (mining calls it with the split) indexes the corpus once; a corpus
    document is scored from the index, any other text (an inverse-cloze positive) under the same
    statistics (:meth:`~rankwise.index.bm25.BM25Index.score_texts`)."""

    family, name = "bm25", "bm25"

    def __init__(self, *, code: bool = False) -> None:
        self.code, self.index, self.rows = code, None, {}

    def prepare(self, dataset) -> None:
        from rankwise.index.retrieve import BM25Retriever, corpus_texts

        ids, texts = corpus_texts(dataset)
        self.index, self.rows = BM25Retriever(ids, texts, code=self.code), {t: i for i, t in enumerate(texts)}

    def score(self, query: str, docs: Sequence[str]) -> np.ndarray:
        if self.index is None:
            raise RankwiseError("the bm25 teacher scores against a corpus: call prepare(dataset) first")
        bm25 = self.index.bm25
        if all(d in self.rows for d in docs):
            return bm25.score_all(query)[[self.rows[d] for d in docs]].astype(np.float32)
        return bm25.score_texts(query, docs)


class EnsembleTeacher(Teacher):
    """Several teachers as one (heterogeneous ensemble distillation): each teacher's scores for a
    query's documents are fused per query (:class:`~rankwise.index.fusion.Fusion`: ``method``
    combsum (default) over ``norm`` (min-max, z-score, ...), combmnz, or rrf over ranks with ``k``),
    with ``weights`` (default equal, summing to 1). Mining's ``teacher_scale`` puts the fused scores
    on a student's scale, as for any teacher."""

    family = "ensemble"

    def __init__(
        self,
        teachers: Sequence,
        *,
        weights: Sequence[float] | None = None,
        norm: str = "min-max",
        method: str = "combsum",
        k: float = 60.0,
    ) -> None:
        from rankwise.errors import ConfigError
        from rankwise.index.fusion import Fusion

        if len(teachers) < 2:
            raise RankwiseError("an ensemble teacher needs at least two teachers")
        self.teachers = [load_teacher(t) for t in teachers]
        w = np.asarray(weights if weights is not None else [1.0] * len(self.teachers), dtype=np.float64)
        if len(w) != len(self.teachers) or (w < 0).any() or w.sum() <= 0:
            raise RankwiseError(f"ensemble weights {list(w)}: one non-negative weight per teacher, not all 0")
        try:
            self.fusion = Fusion(method=method, norm=norm, weights=tuple(w / w.sum()), k=k)
        except ConfigError as exc:
            raise RankwiseError(f"ensemble teacher: {exc}") from None
        self.weights, self.norm = w / w.sum(), norm
        kind = "ensemble" if method == "combsum" else f"ensemble[{method}]"
        self.name = f"{kind}(" + "+".join(t.name for t in self.teachers) + ")"

    def prepare(self, dataset) -> None:
        for t in self.teachers:
            if hasattr(t, "prepare"):
                t.prepare(dataset)

    def score(self, query: str, docs: Sequence[str]) -> np.ndarray:
        return self.score_many([query], [docs])[0]

    def score_many(self, queries: Sequence[str], docs: Sequence[Sequence[str]]) -> list[np.ndarray]:
        each = [t.score_many(queries, docs) for t in self.teachers]  # each teacher batches its own way
        fused = [self.fusion.fuse_aligned([scores[i] for scores in each]) for i in range(len(docs))]
        return [f.astype(np.float32) for f in fused]


def _ensemble(parts: list, fusion: str | None) -> EnsembleTeacher:
    if fusion is None:
        return EnsembleTeacher(parts)
    from rankwise.errors import ConfigError
    from rankwise.index.fusion import parse_fusion

    try:
        f = parse_fusion(fusion)
    except ConfigError as exc:
        raise RankwiseError(f"teacher fusion {fusion!r}: {exc}") from None
    return EnsembleTeacher(parts, weights=f.weights, norm=f.norm, method=f.method, k=f.k)


def load_teacher(spec, *, fusion: str | None = None) -> Teacher:
    """A :class:`Teacher` passes through; a model, or the model a folder holds, teaches as its family
    says (``default``: the packaged all-MiniLM-L6-v2 as a bi-encoder); ``bm25``; a list of these, or
    ``"dirA+dirB+bm25"``: an :class:`EnsembleTeacher`, fused by ``fusion`` (a
    :func:`~rankwise.index.fusion.parse_fusion` spec; default CombSUM over min-max, equal weights)."""
    from rankwise.families import family_of, find_family, load_model

    if isinstance(spec, Teacher):
        return spec
    if isinstance(spec, (list, tuple)) or (isinstance(spec, str) and "+" in spec and not Path(spec).exists()):
        parts = [p.strip() for p in spec.split("+")] if isinstance(spec, str) else list(spec)
        return _ensemble(parts, fusion)
    if str(spec) == "bm25":
        return BM25Teacher()
    family = find_family(spec)
    if family is not None:
        return family.teacher()
    if str(spec) != "default" and not Path(spec).is_dir():
        raise RankwiseError(f"teacher {spec!r} cannot load: no such model folder")
    try:
        return family_of(load_model(None if str(spec) == "default" else spec)).teacher()
    except (RankwiseError, OSError, ValueError, json.JSONDecodeError) as exc:
        raise RankwiseError(f"teacher {spec!r} cannot load: {exc}") from None

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
    """A dual encoder's dot products; all of a mining chunk's documents encoded in one pass."""

    family = "bi-encoder"

    def __init__(self, model) -> None:
        self.model, self.name = model, model.name

    def score(self, query: str, docs: Sequence[str]) -> np.ndarray:
        return self.score_many([query], [docs])[0].astype(np.float32)

    def score_many(self, queries: Sequence[str], docs: Sequence[Sequence[str]]) -> list[np.ndarray]:
        # one encoding pass over all distinct documents, not one per query
        q = self.model.encode(list(queries), "query")
        distinct = list(dict.fromkeys(d for ds in docs for d in ds))
        emb = self.model.encode(distinct, "doc") if distinct else np.zeros((0, q.shape[1]), dtype=np.float32)
        pos = {t: i for i, t in enumerate(distinct)}
        return [
            emb[[pos[d] for d in ds]] @ q[i] if len(ds) else np.zeros(0, dtype=np.float32) for i, ds in enumerate(docs)
        ]


def load_teacher(spec) -> Teacher:
    """A :class:`Teacher` passes through; a model, or the model a folder holds, teaches as its family
    says (``default``: the packaged all-MiniLM-L6-v2 as a bi-encoder)."""
    from rankwise.families import family_of, find_family, load_model

    if isinstance(spec, Teacher):
        return spec
    family = find_family(spec)
    if family is not None:
        return family.teacher()
    if str(spec) != "default" and not Path(spec).is_dir():
        raise RankwiseError(f"teacher {spec!r} cannot load: no such model folder")
    try:
        return family_of(load_model(None if str(spec) == "default" else spec)).teacher()
    except (RankwiseError, OSError, ValueError, json.JSONDecodeError) as exc:
        raise RankwiseError(f"teacher {spec!r} cannot load: {exc}") from None

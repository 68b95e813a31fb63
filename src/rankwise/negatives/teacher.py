"""Teachers that score (query, document) pairs: a cross-encoder folder (a transformers
sequence-classification model with one output) or a bi-encoder folder (any model
:class:`~rankwise.models.BiEncoder` loads). Used by mining to filter false negatives and to
keep teacher scores for distillation, and by false-negative weighting."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rankwise.errors import RankwiseError
from rankwise.models.folders import folder_kind


class Teacher:
    kind: str = ""
    name: str = ""

    def score(self, query: str, docs: Sequence[str]) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def score_many(self, queries: Sequence[str], docs: Sequence[Sequence[str]]) -> list[np.ndarray]:
        return [self.score(q, d) for q, d in zip(queries, docs)]


TEACHERS: dict[str, type[Teacher]] = {}  # kind -> class; register your own with @register_teacher


def register_teacher(cls: type[Teacher]) -> type[Teacher]:
    TEACHERS[cls.kind] = cls
    return cls


@register_teacher
class CrossEncoderTeacher(Teacher):
    """A reranker (:class:`~rankwise.models.CrossEncoder`: one trained here, or any sentence-transformers
    cross-encoder folder) scoring each (query, document) pair; its raw logits are the teacher scores."""

    kind = "cross-encoder"

    def __init__(self, path_or_model, max_length: int | None = None, batch_size: int = 32) -> None:
        from rankwise.models.cross_encoder import CrossEncoder

        self.model = path_or_model if isinstance(path_or_model, CrossEncoder) else CrossEncoder.load(path_or_model)
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


@register_teacher
class BiEncoderTeacher(Teacher):
    kind = "bi-encoder"

    def __init__(self, path_or_model) -> None:
        from rankwise.models import BiEncoder

        if isinstance(path_or_model, BiEncoder):
            self.model = path_or_model
        else:
            self.model = BiEncoder.load(None if path_or_model is None else str(path_or_model))
        self.name = self.model.name

    def score(self, query: str, docs: Sequence[str]) -> np.ndarray:
        q = self.model.encode([query], "query")
        return (self.model.encode(list(docs), "doc") @ q[0]).astype(np.float32)

    def score_many(self, queries: Sequence[str], docs: Sequence[Sequence[str]]) -> list[np.ndarray]:
        # one encoding pass over all distinct documents, not one per query
        q = self.model.encode(list(queries), "query")
        distinct = list(dict.fromkeys(d for ds in docs for d in ds))
        emb = self.model.encode(distinct, "doc") if distinct else np.zeros((0, q.shape[1]), dtype=np.float32)
        pos = {t: i for i, t in enumerate(distinct)}
        return [
            emb[[pos[d] for d in ds]] @ q[i] if len(ds) else np.zeros(0, dtype=np.float32) for i, ds in enumerate(docs)
        ]


def teacher_kind(path: Path) -> str:
    """A folder with a sequence-classification ``config.json`` holds a cross-encoder; any other a bi-encoder."""
    return folder_kind(path)


def load_teacher(spec) -> Teacher:
    """A :class:`Teacher` passes through, a loaded model is wrapped; a model folder loads as the kind :func:`teacher_kind`
    finds (``default``: the packaged all-MiniLM-L6-v2 as a bi-encoder)."""
    if isinstance(spec, Teacher):
        return spec
    from rankwise.models import BiEncoder, CrossEncoder

    if isinstance(spec, CrossEncoder):
        return CrossEncoderTeacher(spec)
    if isinstance(spec, BiEncoder):
        return BiEncoderTeacher(spec)
    if str(spec) == "default":
        return BiEncoderTeacher(None)
    path = Path(spec)
    if not path.is_dir():
        raise RankwiseError(f"teacher {spec!r} cannot load: no such model folder")
    try:
        return TEACHERS[teacher_kind(path)](path)
    except RankwiseError as exc:
        raise RankwiseError(f"teacher {spec!r} cannot load: {exc}") from None
    except (OSError, ValueError, json.JSONDecodeError) as exc:
        raise RankwiseError(f"teacher {spec!r} cannot load: {exc}") from None

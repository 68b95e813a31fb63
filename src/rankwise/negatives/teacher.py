"""Teachers that score (query, document) pairs: a cross-encoder folder (a transformers
sequence-classification model with one output) or a bi-encoder folder (any model
:class:`~rankwise.models.BiEncoder` loads). Used by mining to filter false negatives and to
keep teacher scores for distillation, and by false-negative weighting."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from rankwise.errors import RankwiseError


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
    kind = "cross-encoder"

    def __init__(self, path: Path, max_length: int = 256, batch_size: int = 32) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.name = str(path)
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.model = AutoModelForSequenceClassification.from_pretrained(str(path)).eval()
        if self.model.config.num_labels != 1:
            raise RankwiseError(
                f"teacher {path}: a cross-encoder teacher must have one output, it has {self.model.config.num_labels}"
            )
        self.max_length, self.batch_size = max_length, batch_size

    @torch.inference_mode()
    def score(self, query: str, docs: Sequence[str]) -> np.ndarray:
        out = []
        for start in range(0, len(docs), self.batch_size):
            chunk = list(docs[start : start + self.batch_size])
            enc = self.tokenizer(
                [query] * len(chunk),
                chunk,
                truncation="only_second",
                max_length=self.max_length,
                padding=True,
                return_tensors="pt",
            )
            out.append(self.model(**enc).logits[:, 0].float().numpy())
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


@register_teacher
class BiEncoderTeacher(Teacher):
    kind = "bi-encoder"

    def __init__(self, path: str | Path | None) -> None:
        from rankwise.models import BiEncoder

        self.model = BiEncoder.load(None if path is None else str(path))
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
    cfg = json.loads((path / "config.json").read_text()) if (path / "config.json").is_file() else {}
    return (
        "cross-encoder"
        if any(a.endswith("ForSequenceClassification") for a in cfg.get("architectures") or [])
        else "bi-encoder"
    )


def load_teacher(spec: str | Path | Teacher) -> Teacher:
    """A :class:`Teacher` passes through; a model folder loads as the kind :func:`teacher_kind`
    finds (``default``: the packaged all-MiniLM-L6-v2 as a bi-encoder)."""
    if isinstance(spec, Teacher):
        return spec
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

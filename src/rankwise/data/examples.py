"""Training examples: one query with its positives and (optional) hard negatives.

JSONL, one object a line, either with texts::

    {"query": "...", "positives": ["..."], "negatives": ["..."], "scores": {"positives": [..], "negatives": [..]}}

or with ids into a BEIR corpus (and optionally its queries)::

    {"query_id": "q1", "positive_ids": ["d1"], "negative_ids": ["d7", "d9"]}

``scores`` (teacher scores, for distillation) is optional and must align with the lists it names.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rankwise.data.beir import Dataset, Document
from rankwise.data.jsonl import iter_jsonl, require_id, require_str
from rankwise.errors import DataError
from rankwise.io import atomic_path

log = logging.getLogger(__name__)


@dataclass
class TeacherScores:
    """A teacher's score of each positive and of each hard negative of an example, in their order
    (checked when the example is read; consumers need no further checks)."""

    positives: list[float]
    negatives: list[float]


@dataclass
class TrainExample:
    """Documents carry ids so a batch can tell when two examples share a document."""

    query: str
    positives: list[tuple[str, str]]  # (doc id, text)
    negatives: list[tuple[str, str]] = field(default_factory=list)
    scores: TeacherScores | None = None
    query_id: str | None = None
    # from `rankwise mine`: the retriever's ranks and scores of the positives and negatives
    mined: dict[str, list[float]] | None = None
    source: str | None = None  # the training set it came from, when several are mixed (batching "mix")


def mix_sources(sets: dict[str, list[TrainExample]]) -> list[TrainExample]:
    """Several training sets as one list, each example tagged with its set's name, for the ``mix``
    batching (each batch from one set, so in-batch negatives stay in domain)."""
    from dataclasses import replace

    return [replace(ex, source=name) for name, examples in sets.items() for ex in examples]


def _text_id(text: str) -> str:
    # Texts without ids are identified by content, so equal texts count as the same document.
    return "text:" + text


def _text_list(obj: dict[str, Any], name: str, path: Path, line: int, *, required: bool) -> list[str] | None:
    if name not in obj:
        if required:
            raise DataError("missing field", path=path, line=line, field=name)
        return None
    value = obj[name]
    if not isinstance(value, list):
        raise DataError(f"expected a list, got {type(value).__name__}", path=path, line=line, field=name)
    for i, item in enumerate(value):
        if isinstance(item, (int, float)) and not isinstance(item, bool) and name.endswith("_ids"):
            value[i] = item = str(item)
        if not isinstance(item, str):
            raise DataError(f"item {i} is {type(item).__name__}, expected a string", path=path, line=line, field=name)
        if not item.strip():
            raise DataError(f"item {i} is empty text", path=path, line=line, field=name)
    return value


def _scores(obj: dict[str, Any], lengths: dict[str, int], path: Path, line: int) -> TeacherScores | None:
    raw = obj.get("scores")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise DataError(
            'expected an object {"positives": [...], "negatives": [...]}', path=path, line=line, field="scores"
        )
    out: dict[str, list[float]] = {}
    for key, values in raw.items():
        where = f"scores.{key}"
        if key not in lengths:
            raise DataError(f"unknown key; expected one of {sorted(lengths)}", path=path, line=line, field=where)
        if not isinstance(values, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
        ):
            raise DataError("expected a list of numbers", path=path, line=line, field=where)
        if len(values) != lengths[key]:
            raise DataError(f"has {len(values)} scores for {lengths[key]} {key}", path=path, line=line, field=where)
        out[key] = [float(v) for v in values]
    for key in lengths:
        if key not in out:
            raise DataError(
                f"teacher scores need both 'positives' and 'negatives'; '{key}' is missing",
                path=path,
                line=line,
                field="scores",
            )
    return TeacherScores(out["positives"], out["negatives"])


def _mined(obj: dict[str, Any], n_pos: int, n_neg: int, path: Path, line: int) -> dict[str, list[float]] | None:
    raw = obj.get("mined")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise DataError("expected an object", path=path, line=line, field="mined")
    out = {}
    for key, n in (
        ("positive_ranks", n_pos),
        ("positive_scores", n_pos),
        ("negative_ranks", n_neg),
        ("negative_scores", n_neg),
    ):
        values = raw.get(key)
        if values is None:
            continue
        if (
            not isinstance(values, list)
            or len(values) != n
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        ):
            raise DataError(f"expected {n} numbers", path=path, line=line, field=f"mined.{key}")
        out[key] = [float(v) for v in values]
    return out


def load_examples(path: str | Path, dataset: Dataset | None = None) -> list[TrainExample]:
    """Read training JSONL; the id form needs ``dataset`` (its corpus, and its queries for ``query_id``)."""
    path = Path(path)
    examples: list[TrainExample] = []
    empty_skipped = 0
    for lineno, obj in iter_jsonl(path):
        by_id = "positive_ids" in obj or "query_id" in obj
        if by_id:
            if dataset is None:
                raise DataError(
                    "ids need a corpus: pass the dataset they refer to (data=)",
                    path=path,
                    line=lineno,
                    field="positive_ids",
                )
            if "query" in obj:
                query, qid = require_str(obj, "query", path, lineno), obj.get("query_id")
            else:
                qid = require_id(obj, "query_id", path, lineno)
                if qid not in dataset.queries:
                    raise DataError(f"unknown query {qid!r}", path=path, line=lineno, field="query_id")
                query = dataset.queries[qid]
            docs = {}
            for name in ("positive_ids", "negative_ids"):
                ids = _text_list(obj, name, path, lineno, required=name == "positive_ids") or []
                for did in ids:
                    if did not in dataset.corpus:
                        raise DataError(f"unknown document {did!r}", path=path, line=lineno, field=name)
                docs[name] = [(did, dataset.corpus[did].full_text) for did in ids]
            positives, negatives = docs["positive_ids"], docs["negative_ids"]
            if any(not t.strip() for _, t in positives):
                if "scores" in obj or not any(t.strip() for _, t in positives):
                    empty_skipped += 1  # teacher scores align with the listed positives; no usable positive
                    continue
                positives = [(d, t) for d, t in positives if t.strip()]
        else:
            query, qid = require_str(obj, "query", path, lineno), None
            positives = [(_text_id(t), t) for t in _text_list(obj, "positives", path, lineno, required=True) or []]
            negatives = [(_text_id(t), t) for t in _text_list(obj, "negatives", path, lineno, required=False) or []]
        if not positives:
            raise DataError("no positive", path=path, line=lineno, field="positive_ids" if by_id else "positives")
        scores = _scores(obj, {"positives": len(positives), "negatives": len(negatives)}, path, lineno)
        mined = _mined(obj, len(positives), len(negatives), path, lineno)
        examples.append(TrainExample(query, positives, negatives, scores, qid, mined))
    if empty_skipped:
        log.warning(
            "%s: skipped %d examples whose positives are empty records (no title, no text)", path, empty_skipped
        )
    if not examples:
        raise DataError("no training examples", path=path)
    return examples


def examples_from_qrels(dataset: Dataset) -> list[TrainExample]:
    """One example per judged query: its documents with grade > 0 are the positives. A positive
    that is an empty record (no title, no text) cannot teach anything: it is skipped, with a count."""
    out = []
    empty = 0
    for qid, judged in dataset.qrels.items():
        pos = [(did, dataset.corpus[did].full_text) for did, rel in judged.items() if rel > 0]
        kept = [(did, text) for did, text in pos if text.strip()]
        empty += len(pos) - len(kept)
        if kept and qid in dataset.queries:
            out.append(TrainExample(dataset.queries[qid], kept, query_id=qid))
    if empty:
        log.warning("%s: skipped %d positives that are empty records (no title, no text)", dataset.path, empty)
    return out


def write_examples(path: str | Path, examples: Iterable[TrainExample]) -> None:
    import json

    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for ex in examples:
            row: dict[str, Any] = {
                "query": ex.query,
                "positives": [t for _, t in ex.positives],
                "negatives": [t for _, t in ex.negatives],
            }
            if ex.scores:
                row["scores"] = {"positives": ex.scores.positives, "negatives": ex.scores.negatives}
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


__all__ = ["TrainExample", "TeacherScores", "load_examples", "examples_from_qrels", "write_examples", "Document"]

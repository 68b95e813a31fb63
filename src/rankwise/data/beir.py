"""BEIR-format datasets: ``corpus.jsonl``, ``queries.jsonl`` (each optionally ``.gz``) and ``qrels/<split>.tsv``."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from rankwise.data.jsonl import find_file, iter_jsonl, require_id, require_str
from rankwise.data.trec import Qrels, iter_qrels
from rankwise.errors import DataError

log = logging.getLogger(__name__)


@dataclass
class Document:
    text: str
    title: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def full_text(self) -> str:
        """BEIR's convention: ``title + " " + text`` (just the text when there is no title)."""
        return f"{self.title} {self.text}" if self.title else self.text


@dataclass
class Dataset:
    """A retrieval dataset for one split. ``qrels`` grades are integers (0 = judged non-relevant)."""

    corpus: dict[str, Document]
    queries: dict[str, str]
    qrels: Qrels
    path: Path | None = None
    split: str | None = None
    warnings: list[str] = field(default_factory=list)
    split_field: str | None = None  # a corpus field naming each document's split, where the dataset declares one
    # query id -> {judged document id: the text a teacher reads for it}, where that is not the corpus
    # document: a pseudo-query judging its source, whose training positive is the source less the query
    positive_texts: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def split_queries(self) -> dict[str, str]:
        """The queries this split evaluates: those named in its qrels, in qrels order."""
        return {qid: self.queries[qid] for qid in self.qrels if qid in self.queries}

    def own_split(self) -> Dataset:
        """Where the dataset declares a split field (``stdlib-code``'s ``BUILD.json`` does: each
        record's ``split``), keep the documents of this split, so a split is searched over its own
        documents; any other dataset is unchanged, whatever fields its records carry. Judged
        queries left without a document are dropped and said (a warning, logged)."""
        if self.split_field is None:
            return self
        field_ = self.split_field
        keep = {d for d, doc in self.corpus.items() if doc.meta.get(field_, self.split) == self.split}
        if not keep:
            raise DataError(f"no document of split {self.split!r} in the corpus (its {field_!r} field)", path=self.path)
        if len(keep) == len(self.corpus):
            return self
        out = self.restrict_corpus(keep)
        dropped = len(self.qrels) - len(out.qrels)
        if dropped:
            note = f"{dropped} of {len(self.qrels)} judged queries have no judged document of split {self.split!r}: dropped"
            out.warnings.append(note)
            log.warning("%s (%s): %s", self.path, self.split, note)
        return out

    def hold_out(self, n: int, *, seed: int = 0, split: str = "dev") -> tuple[Dataset, Dataset]:
        """``(rest, held)``: ``n`` of this split's judged queries, drawn at random (seeded), moved to
        a new split named ``split`` over the same corpus, e.g. a dev split carved from train."""
        qids = sorted(self.qrels)
        if not 0 < n < len(qids):
            raise DataError(
                f"hold_out: n={n} must be between 1 and {len(qids) - 1} (the split has {len(qids)} queries)"
            )
        held = set(np.random.default_rng(seed).choice(len(qids), size=n, replace=False).tolist())
        pick = {q for i, q in enumerate(qids) if i in held}

        def part(keep: bool, name: str | None) -> Dataset:
            qrels = {q: j for q, j in self.qrels.items() if (q in pick) == keep}
            return replace(self, qrels=qrels, split=name, warnings=list(self.warnings))

        return part(False, self.split), part(True, split)

    def restrict_corpus(self, keep: set[str]) -> Dataset:
        """A copy whose corpus holds only ``keep`` and whose qrels drop judgements outside it."""
        corpus = {did: doc for did, doc in self.corpus.items() if did in keep}
        qrels = {q: {d: r for d, r in j.items() if d in keep} for q, j in self.qrels.items()}
        kept = {q: j for q, j in qrels.items() if j}
        return replace(self, corpus=corpus, qrels=kept, warnings=list(self.warnings))


def _records(path: Path) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """``(line, _id, object)`` for each record; a repeated ``_id`` is an error."""
    seen: set[str] = set()
    for lineno, obj in iter_jsonl(path):
        rid = require_id(obj, "_id", path, lineno)
        if rid in seen:
            raise DataError(f"duplicate id {rid!r}", path=path, line=lineno, field="_id")
        seen.add(rid)
        yield lineno, rid, obj


def load_corpus(path: str | Path) -> dict[str, Document]:
    path = Path(path)
    corpus: dict[str, Document] = {}
    for lineno, did, obj in _records(path):
        text = require_str(obj, "text", path, lineno, allow_empty=True)
        title = obj.get("title") or ""
        if not isinstance(title, str):
            raise DataError(f"expected a string, got {type(title).__name__}", path=path, line=lineno, field="title")
        meta = {k: v for k, v in obj.items() if k not in {"_id", "text", "title"}}
        corpus[did] = Document(text=text, title=title, meta=meta)
    return corpus


def load_queries(path: str | Path) -> dict[str, str]:
    path = Path(path)
    return {qid: require_str(obj, "text", path, lineno) for lineno, qid, obj in _records(path)}


def _normal(key: str) -> str:
    return key.lstrip("0").lower() or "0"


def _near_id(key: str, known: dict) -> str:
    """A hint when ``key`` matches a known id but for leading zeros or case (ids are compared exactly)."""
    want = _normal(key)
    near = next((k for k in known if _normal(k) == want), None)
    return f"; it has {near!r} (ids are compared exactly as written: leading zeros and case count)" if near else ""


def available_splits(folder: str | Path) -> list[str]:
    qdir = Path(folder) / "qrels"
    return sorted(p.name.split(".")[0] for p in qdir.glob("*.tsv*")) if qdir.is_dir() else []


_SOURCES = {  # what a qrels line names: (file it must be in, field, plural)
    "query": ("queries.jsonl", "query-id", "queries"),
    "document": ("corpus.jsonl", "corpus-id", "documents"),
}


def _read_qrels(path: Path, queries: dict, corpus: dict, allow_missing: bool) -> tuple[Qrels, dict[str, int]]:
    """The judgements of a qrels file, each (query, document) once; a query or document the
    dataset lacks is an error naming the line, or, with ``allow_missing``, dropped and counted."""
    qrels: Qrels = {}
    missing = dict.fromkeys(_SOURCES, 0)
    for lineno, qid, did, rel in iter_qrels(path):
        where = {"path": path, "line": lineno, "allow_missing": allow_missing}
        absent = _absent(qid, queries, "query", **where) or _absent(did, corpus, "document", **where)
        if absent:
            missing[absent] += 1
            continue
        judged = qrels.setdefault(qid, {})
        if did in judged:
            raise DataError(
                f"document {did!r} judged twice for query {qid!r}", path=path, line=lineno, field="corpus-id"
            )
        judged[did] = rel
    return qrels, missing


def _absent(ident: str, known: dict, kind: str, *, path: Path, line: int, allow_missing: bool) -> str | None:
    """``kind`` when ``ident`` is not in its file and may be dropped; an error naming the line when it may not."""
    if ident in known:
        return None
    file, field, _ = _SOURCES[kind]
    if not allow_missing:
        raise DataError(
            f"{kind} {ident!r} is not in {file}{_near_id(ident, known)} (allow_missing=True drops it)",
            path=path,
            line=line,
            field=field,
        )
    return kind


def load_beir(
    folder: str | Path,
    split: str = "test",
    *,
    allow_missing: bool = False,
    corpus: dict[str, Document] | None = None,
    queries: dict[str, str] | None = None,
) -> Dataset:
    """Load one split of a BEIR folder.

    Qrels that name a query or document absent from ``queries``/``corpus`` are an error naming the
    qrels line; with ``allow_missing=True`` they are dropped and counted in ``Dataset.warnings``.
    ``corpus`` and ``queries`` already read (another split of the same folder) are not read again.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError("no such dataset folder", path=folder)
    corpus = corpus if corpus is not None else load_corpus(find_file(folder, "corpus.jsonl"))
    queries = queries if queries is not None else load_queries(find_file(folder, "queries.jsonl"))
    qrels_dir = folder / "qrels"
    try:
        qrels_path = find_file(qrels_dir, f"{split}.tsv")
    except DataError:
        raise DataError(
            f"no qrels for split {split!r}; available: {available_splits(folder) or 'none'}", path=qrels_dir
        ) from None
    qrels, missing = _read_qrels(qrels_path, queries, corpus, allow_missing)
    if not qrels:
        raise DataError(f"split {split!r} has no judgements to evaluate or train on", path=qrels_path)
    warnings = []
    empty = [d for d, doc in corpus.items() if not doc.full_text.strip()]
    if empty:  # kept, as BEIR's loader keeps them: they can still be retrieved (and judged)
        shown = ", ".join(repr(d) for d in empty[:3]) + (", ..." if len(empty) > 3 else "")
        warnings.append(f"{len(empty)} documents have no title and no text (kept): {shown}")
    for kind, n in missing.items():
        if n:
            file, _, plural = _SOURCES[kind]
            warnings.append(f"dropped {n} judgements of {plural} missing from {file}")
    for w in warnings:
        log.warning("%s: %s", qrels_path, w)
    return Dataset(corpus, queries, qrels, folder, split, warnings, declared_split_field(folder))


def declared_split_field(folder: Path) -> str | None:
    """The corpus field that names each document's split, where the dataset declares one: a
    ``BUILD.json`` with ``"split_field"`` (the built-in stdlib-code: ``split``). Read, never run."""
    path = Path(folder) / "BUILD.json"
    if not path.is_file():
        return None
    try:
        build = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(build, dict):
        return None
    return build.get("split_field") or ("split" if build.get("name") == "stdlib-code" else None)


def load_dataset(name: str | Path, split: str = "test", *, allow_missing: bool = False) -> Dataset:
    """One split of a dataset, searched over its own documents (:meth:`Dataset.own_split`).

    ``name``: a BEIR folder, or the built-in ``"stdlib-code"`` (built from this Python's standard
    library on first use and cached)."""
    if str(name) == "stdlib-code":
        from rankwise.data.stdlib_code import ensure_built

        name = ensure_built()
    return load_beir(name, split, allow_missing=allow_missing).own_split()

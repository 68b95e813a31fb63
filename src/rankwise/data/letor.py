"""Feature-based learning-to-rank data: SVMlight / LETOR text files.

One row a line: ``label [qid:Q] index:value ... [# comment]`` (indices from 1, sparse or dense;
LETOR's comment carries ``docid = X``). Rows of a query are contiguous. Without ``qid:``, the
query groups come from a side file of group sizes, one a line, in row order (LightGBM's
``rank.train.query``); a ``.position`` file (LightGBM's, ``pos_N`` or ``N`` a line) gives the
position each row was displayed at when it was logged. Reading is strict and line-located: a
malformed feature, a non-numeric label, a query whose rows are not contiguous, group sizes
that do not add up, a position file of another length are errors naming file and line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rankwise.data.jsonl import open_text
from rankwise.errors import DataError, RankwiseError
from rankwise.io import atomic_path

_DOCID = re.compile(r"docid\s*=\s*(\S+)")


@dataclass
class LetorData:
    """Rows grouped by query: ``features[offsets[i]:offsets[i+1]]`` are query ``qids[i]``'s rows."""

    features: np.ndarray  # [rows, n_features] float32 (a feature absent from a sparse row is 0)
    labels: np.ndarray  # [rows] float32 grades
    qids: list[str]
    offsets: np.ndarray  # [queries + 1]
    doc_ids: list[str] = field(default_factory=list)  # per row: the comment's docid, else "<qid>:<row in query>"
    positions: np.ndarray | None = None  # [rows] logged display positions (1 = top), when known
    path: Path | None = None

    @property
    def n_queries(self) -> int:
        return len(self.qids)

    @property
    def n_features(self) -> int:
        return self.features.shape[1]

    def query(self, i: int) -> slice:
        return slice(int(self.offsets[i]), int(self.offsets[i + 1]))

    def subset(self, queries: Sequence[int]) -> LetorData:
        """The given queries (by index), in that order."""
        rows = np.concatenate([np.arange(*self.query(i).indices(len(self.labels))) for i in queries])
        sizes = [self.offsets[i + 1] - self.offsets[i] for i in queries]
        return LetorData(
            self.features[rows],
            self.labels[rows],
            [self.qids[i] for i in queries],
            np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
            [self.doc_ids[r] for r in rows],
            None if self.positions is None else self.positions[rows],
            self.path,
        )

    def split(self, share: float, seed: int = 0) -> tuple[LetorData, LetorData]:
        """A seeded split of the queries: (the rest, ``share`` of them), e.g. train and validation."""
        order = np.random.default_rng(seed).permutation(self.n_queries)
        n = max(1, int(round(share * self.n_queries)))
        return self.subset(sorted(order[n:])), self.subset(sorted(order[:n]))

    def folds(self, k: int = 5, seed: int = 0) -> list[tuple[LetorData, LetorData, LetorData]]:
        """K-fold cross-validation in LETOR's rotation: the queries are shuffled (seeded) into ``k``
        parts; fold ``i`` tests on part ``i``, validates on part ``i + 1`` (mod ``k``) and trains on
        the other ``k - 2``, so every query is tested once and validated once.

        >>> data = LetorData(np.zeros((10, 1), np.float32), np.zeros(10, np.float32),
        ...                  [f"q{i}" for i in range(10)], np.arange(11), [f"d{i}" for i in range(10)])
        >>> [(tr.n_queries, va.n_queries, te.n_queries) for tr, va, te in data.folds(5)]
        [(6, 2, 2), (6, 2, 2), (6, 2, 2), (6, 2, 2), (6, 2, 2)]
        >>> sorted(q for _, _, te in data.folds(5) for q in te.qids) == sorted(data.qids)
        True
        """
        if not 3 <= k <= self.n_queries:
            raise RankwiseError(f"folds: k must be between 3 and the number of queries ({self.n_queries}), not {k}")
        parts = np.array_split(np.random.default_rng(seed).permutation(self.n_queries), k)
        out = []
        for i in range(k):
            train = np.concatenate([parts[j] for j in range(k) if j not in (i, (i + 1) % k)])
            out.append(
                (self.subset(sorted(train)), self.subset(sorted(parts[(i + 1) % k])), self.subset(sorted(parts[i])))
            )
        return out

    @staticmethod
    def concat(parts: Sequence[LetorData]) -> LetorData:
        """The queries of every part, in order (e.g. a LETOR fold's ``vali.txt`` and ``test.txt`` to
        cross-validate over); a query id in two parts is an error."""
        qids = [q for p in parts for q in p.qids]
        if len(set(qids)) < len(qids):
            dup = next(q for q in qids if qids.count(q) > 1)
            raise DataError(f"concat: query {dup!r} is in more than one part")
        if len({p.n_features for p in parts}) > 1:
            widths = sorted({p.n_features for p in parts})
            # sparse files are as wide as their largest index: the reader's n_features aligns them
            raise DataError(
                f"concat: the parts have {widths} features; read them with read_letor(..., n_features={widths[-1]}) to align sparse files"
            )
        sizes = np.concatenate([np.diff(p.offsets) for p in parts])
        has_pos = all(p.positions is not None for p in parts)
        return LetorData(
            np.concatenate([p.features for p in parts]),
            np.concatenate([p.labels for p in parts]),
            qids,
            np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
            [d for p in parts for d in p.doc_ids],
            np.concatenate([p.positions for p in parts]) if has_pos else None,  # type: ignore[misc]
            None,
        )

    def qrels(self) -> dict[str, dict[str, int]]:
        """``{qid: {doc id: grade}}`` for the trec_eval-exact metrics."""
        return {
            q: {self.doc_ids[r]: int(self.labels[r]) for r in range(*self.query(i).indices(len(self.labels)))}
            for i, q in enumerate(self.qids)
        }

    def run(self, scores: np.ndarray) -> dict[str, dict[str, float]]:
        """A run from one score per row."""
        return {
            q: {self.doc_ids[r]: float(scores[r]) for r in range(*self.query(i).indices(len(self.labels)))}
            for i, q in enumerate(self.qids)
        }

    def examples(self) -> list[ListExample]:
        """One training example per query (its rows' features and grades)."""
        return [
            ListExample(q, self.features[self.query(i)], self.labels[self.query(i)]) for i, q in enumerate(self.qids)
        ]


@dataclass
class ListExample:
    """A query's candidate list as features and grades: what the feature scorer trains on. It has
    no texts, so the text parts of training (mined negatives, teachers) leave it as it is."""

    query_id: str
    features: np.ndarray  # [n, n_features]
    labels: np.ndarray  # [n]
    negatives: list = field(default_factory=list)
    scores: None = None
    positives: list = field(default_factory=list)

    @property
    def query(self) -> str:
        return self.query_id


def _number(text: str, path: Path, line: int, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"expected a number, got {text!r}", path=path, line=line, field=what) from None
    if not math.isfinite(value):
        raise DataError(f"{text!r} is not finite", path=path, line=line, field=what)
    return value


def _row(parts: list[str], path: Path, lineno: int) -> tuple[float, str | None, list[int], list[float]]:
    label = _number(parts[0], path, lineno, "label")
    qid = None
    idx: list[int] = []
    val: list[float] = []
    for tok in parts[1:]:
        key, colon, value = tok.partition(":")
        if not colon:
            raise DataError(f"feature {tok!r}: expected index:value", path=path, line=lineno, field="feature")
        if key == "qid":
            qid = value
            continue
        if not key.isdigit() or int(key) < 1:
            raise DataError(
                f"feature {tok!r}: the index must be an integer >= 1", path=path, line=lineno, field="feature"
            )
        idx.append(int(key))
        val.append(_number(value, path, lineno, f"feature {key}"))
    return label, qid, idx, val


def _side_file(path: Path, suffix: str, given: str | Path | None) -> Path | None:
    if given is not None:
        return Path(given)
    side = path.with_name(path.name + suffix)
    return side if side.is_file() else None


def read_letor(
    path: str | Path,
    *,
    query_file: str | Path | None = None,
    position_file: str | Path | None = None,
    n_features: int | None = None,
    lenient: bool = False,
) -> LetorData:
    """Read an SVMlight / LETOR file. Query groups: ``qid:`` on each row, else ``query_file``
    (default: ``<path>.query`` when it exists). Positions: ``position_file`` (default:
    ``<path>.position`` when it exists). ``n_features``: the width (default: the largest index).
    ``lenient``: a row with a malformed label or feature is skipped and counted in one warning
    (rows with ``qid:`` only: a group or position file counts rows, so there it stays an error)."""
    path = Path(path)
    if not path.is_file():
        raise RankwiseError(f"{path}: no such LETOR file")
    labels: list[float] = []
    rows: list[tuple[list[int], list[float]]] = []
    row_qids: list[str | None] = []
    doc_ids: list[str | None] = []
    width = 0
    skipped = 0
    with open_text(path) as fh:
        for lineno, raw in enumerate(fh, start=1):
            body, _, comment = raw.partition("#")
            parts = body.split()
            if not parts:
                continue
            try:
                label, qid, idx, val = _row(parts, path, lineno)
            except DataError:
                if not lenient or "qid:" not in body:
                    raise
                skipped += 1
                continue
            labels.append(label)
            width = max([width, *idx])
            rows.append((idx, val))
            row_qids.append(qid)
            found = _DOCID.search(comment)
            doc_ids.append(found.group(1) if found else None)
    if skipped:
        import logging

        logging.getLogger(__name__).warning("%s: skipped %d malformed rows (lenient)", path, skipped)
    if not rows:
        raise DataError("no rows", path=path)
    if n_features is not None and width > n_features:
        raise DataError(f"feature index {width} is beyond n_features={n_features}", path=path)
    features = np.zeros((len(rows), n_features or width), dtype=np.float32)
    for r, (idx, val) in enumerate(rows):
        features[r, np.asarray(idx, dtype=np.int64) - 1] = val
    qids, offsets = _groups(path, row_qids, query_file)
    ids = []
    for i, q in enumerate(qids):
        seen: set[str] = set()
        for n, r in enumerate(range(offsets[i], offsets[i + 1])):
            d = doc_ids[r] if doc_ids[r] is not None and doc_ids[r] not in seen else f"{q}:{n}"
            seen.add(d)
            ids.append(d)
    positions = None
    pos_path = _side_file(path, ".position", position_file)
    if pos_path is not None:
        positions = _positions(pos_path, len(rows))
    return LetorData(features, np.asarray(labels, dtype=np.float32), qids, offsets, ids, positions, path)


def _groups(path: Path, row_qids: list[str | None], query_file: str | Path | None) -> tuple[list[str], np.ndarray]:
    if all(q is not None for q in row_qids):
        qids: list[str] = []
        starts: list[int] = []
        first_line: dict[str, int] = {}
        for r, q in enumerate(row_qids):
            if qids and q == qids[-1]:
                continue
            if q in first_line:
                raise DataError(
                    f"query {q!r} continues after other queries' rows (its rows must be contiguous; "
                    f"it started at row {first_line[q] + 1})",
                    path=path,
                    line=r + 1,
                    field="qid",
                )
            first_line[q] = r
            qids.append(q)
            starts.append(r)
        return qids, np.asarray(starts + [len(row_qids)], dtype=np.int64)
    if any(q is not None for q in row_qids):
        r = next(i for i, q in enumerate(row_qids) if q is None)
        raise DataError("this row has no qid: while others do", path=path, line=r + 1, field="qid")
    groups = _side_file(path, ".query", query_file)
    if groups is None:
        raise DataError(f"rows without qid: and no group file ({path.name}.query, or query_file=)", path=path)
    sizes = []
    with open_text(groups) as fh:
        for lineno, raw in enumerate(fh, start=1):
            if raw.strip():
                n = _number(raw.strip(), groups, lineno, "group size")
                if n < 1 or not float(n).is_integer():
                    raise DataError(f"group size {raw.strip()!r}: expected an integer >= 1", path=groups, line=lineno)
                sizes.append(int(n))
    if sum(sizes) != len(row_qids):
        raise DataError(
            f"the group sizes add up to {sum(sizes)} rows, and {path.name} has {len(row_qids)}", path=groups
        )
    return [str(i) for i in range(len(sizes))], np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


def _positions(path: Path, n_rows: int) -> np.ndarray:
    out = []
    with open_text(path) as fh:
        for lineno, raw in enumerate(fh, start=1):
            text = raw.strip()
            if not text:
                continue
            value = text[4:] if text.startswith("pos_") else text
            if not value.isdigit() or int(value) < 1:
                raise DataError(f"position {text!r}: expected pos_N or N with N >= 1", path=path, line=lineno)
            out.append(int(value))
    if len(out) != n_rows:
        raise DataError(f"{len(out)} positions for {n_rows} rows", path=path)
    return np.asarray(out, dtype=np.int64)


def write_letor(path: str | Path, data: LetorData, *, qid: bool = True, sparse: bool = True) -> None:
    """Write ``data`` (with ``qid:`` on each row, or without and a ``.query`` group file beside it)."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for i, q in enumerate(data.qids):
            for r in range(*data.query(i).indices(len(data.labels))):
                feats = " ".join(f"{j + 1}:{v:.9g}" for j, v in enumerate(data.features[r]) if not sparse or v != 0)
                label = f"{data.labels[r]:g}"
                fh.write(" ".join(x for x in (label, f"qid:{q}" if qid else "", feats) if x))
                fh.write(f" #docid = {data.doc_ids[r]}\n")
    if not qid:
        sizes = np.diff(data.offsets)
        with atomic_path(path.with_name(path.name + ".query")) as tmp:
            tmp.write_text("".join(f"{n}\n" for n in sizes))


@dataclass
class Normalizer:
    """Feature normalisation. ``"query"``: min-max within each query (LETOR's QueryLevelNorm; a
    feature constant within a query becomes 0); ``"global"``: z-scores with the mean and standard
    deviation of the data it was fitted on (fit on train, apply to test); ``"none"``."""

    mode: str = "query"
    mean: np.ndarray | None = None
    std: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("query", "global", "none"):
            raise RankwiseError(f"normalisation {self.mode!r}: expected query, global or none")

    def fit(self, data: LetorData) -> Normalizer:
        if self.mode == "global":
            self.mean = data.features.mean(0)
            self.std = data.features.std(0)
        return self

    def transform(self, data: LetorData) -> LetorData:
        x = data.features.astype(np.float32, copy=True)
        if self.mode == "query":
            for i in range(data.n_queries):
                part = x[data.query(i)]
                lo, hi = part.min(0), part.max(0)
                span = np.where(hi > lo, hi - lo, 1.0)
                x[data.query(i)] = np.where(hi > lo, (part - lo) / span, 0.0)
        elif self.mode == "global":
            if self.mean is None or self.std is None:
                raise RankwiseError("global normalisation: fit() on the training data first")
            x = (x - self.mean) / np.where(self.std > 0, self.std, 1.0)
        return LetorData(x, data.labels, data.qids, data.offsets, data.doc_ids, data.positions, data.path)

"""Qrels and run files: BEIR TSV qrels, TREC qrels (``qid 0 docid rel``) and TREC runs
(``qid Q0 docid rank score tag``). Reading is strict and line-located; writing is atomic."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from rankwise.data.jsonl import check_id, open_text
from rankwise.errors import DataError
from rankwise.io import atomic_path

log = logging.getLogger(__name__)

Qrels = dict[str, dict[str, int]]
Run = dict[str, dict[str, float]]  # {query id: {doc id: score}}: the one run type of rankwise


def ranked_run(qids: Sequence[str], ids: Sequence[str], rows: np.ndarray, scores: np.ndarray) -> Run:
    """An index's ``(rows, scores)`` per query as a run; a row of -1 (fewer matches than asked) is skipped.

    >>> ranked_run(["q"], ["a", "b"], np.array([[1, -1]]), np.array([[0.5, 0.0]]))
    {'q': {'b': 0.5}}
    """
    return {
        qid: {ids[int(j)]: float(s) for j, s in zip(row_i, row_s) if j >= 0}
        for qid, row_i, row_s in zip(qids, rows, scores)
    }


def _parse_int(value: str, path: Path, line: int, field: str) -> int:
    try:
        as_float = float(value)
    except ValueError:
        raise DataError(f"expected an integer, got {value!r}", path=path, line=line, field=field) from None
    if not as_float.is_integer():
        raise DataError(f"expected an integer grade, got {value!r}", path=path, line=line, field=field)
    return int(as_float)


def iter_qrels(path: str | Path) -> Iterator[tuple[int, str, str, int]]:
    """Yield ``(line, qid, docid, grade)`` from BEIR TSV qrels (optional header) or TREC qrels.

    The format is told per line by its column count: 3 (BEIR) or 4 (TREC).
    """
    path = Path(path)
    with open_text(path) as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split("\t") if "\t" in line else line.split()
            if lineno == 1 and parts[0] in {"query-id", "query_id", "qid"}:
                continue
            if len(parts) == 3:
                qid, did, grade = parts
            elif len(parts) == 4:
                qid, _, did, grade = parts
            else:
                raise DataError(
                    f"expected 3 columns (query-id corpus-id score) or 4 (qid iter docid rel), got {len(parts)}",
                    path=path,
                    line=lineno,
                )
            # negative grades (TREC Web's -1 non-relevant, -2 spam) are kept as written: every
            # consumer treats grade < 1 as non-relevant, as trec_eval does at relevance level 1
            rel = _parse_int(grade, path, lineno, "score")
            qid, did = qid.strip(), did.strip()
            check_id(qid, path, lineno, "query-id")
            check_id(did, path, lineno, "corpus-id")
            yield lineno, qid, did, rel


def read_qrels(path: str | Path) -> Qrels:
    """Read qrels into ``{qid: {docid: grade}}``; a document judged twice for one query is an error."""
    qrels: Qrels = {}
    for lineno, qid, did, rel in iter_qrels(path):
        judged = qrels.setdefault(qid, {})
        if did in judged:
            raise DataError(
                f"document {did!r} judged twice for query {qid!r}", path=path, line=lineno, field="corpus-id"
            )
        judged[did] = rel
    if not qrels:
        raise DataError("no judgements (an empty qrels file would score every run 0)", path=path)
    return qrels


def write_qrels(path: str | Path, qrels: Mapping[str, Mapping[str, int]], *, trec: bool = False) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        if not trec:
            fh.write("query-id\tcorpus-id\tscore\n")
        for qid, judged in qrels.items():
            for did, rel in judged.items():
                fh.write(f"{qid} 0 {did} {rel}\n" if trec else f"{qid}\t{did}\t{rel}\n")


def read_run(path: str | Path, *, lenient: bool = False, lines: dict[str, int] | None = None) -> Run:
    """Read a TREC run. Scores must be finite and a document may appear once per ranking; with
    ``lenient`` such lines are dropped (the first occurrence kept) and counted in one warning.
    ``lines``, when given, receives the first line of each query (for errors that name it)."""
    path = Path(path)
    run: Run = {}
    dropped: dict[str, int] = {}
    with open_text(path) as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = raw.strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) != 6:
                raise DataError(
                    f"expected 6 columns (qid Q0 docid rank score tag), got {len(parts)}", path=path, line=lineno
                )
            qid, _, did, _, score_text, _ = parts
            try:
                score = float(score_text)
            except ValueError:
                raise DataError(
                    f"expected a number, got {score_text!r}", path=path, line=lineno, field="score"
                ) from None
            ranking = run.setdefault(qid, {})
            if lines is not None:
                lines.setdefault(qid, lineno)
            problem = None
            if not math.isfinite(score):
                problem, field, msg = "non-finite score", "score", f"score is {score_text}"
            elif did in ranking:
                problem, field, msg = (
                    "duplicate document",
                    "docid",
                    f"document {did!r} appears twice in the ranking of query {qid!r}",
                )
            if problem is not None:
                if not lenient:
                    raise DataError(
                        msg + " (lenient=True drops such lines with a warning)", path=path, line=lineno, field=field
                    )
                dropped[problem] = dropped.get(problem, 0) + 1
                continue
            ranking[did] = score
    if dropped:
        log.warning("%s: dropped %s", path, ", ".join(f"{n} line(s) with a {k}" for k, n in dropped.items()))
    if not run:
        if not lenient:
            raise DataError("no run lines (an empty run would score 0 on every query)", path=path)
        log.warning("%s: the run is empty", path)
    return run


def write_run(path: str | Path, run: Mapping[str, Mapping[str, float]], *, tag: str = "rankwise") -> None:
    """Write a TREC run, each query's documents by descending score (ties by docid descending, as trec_eval ranks)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for qid, ranking in run.items():
            ordered = sorted(ranking.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)
            for rank, (did, score) in enumerate(ordered, start=1):
                fh.write(f"{qid} Q0 {did} {rank} {float(score)!r} {tag}\n")

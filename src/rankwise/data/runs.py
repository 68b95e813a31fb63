"""Runs as ``rankwise compare`` and ``rankwise report`` take them: a TREC run file, or a run
folder that rankwise wrote (``run.trec`` plus ``config.toml``, whose ``[run]`` table names the
dataset and split, so the qrels are found without being named again)."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from rankwise.data.jsonl import find_file
from rankwise.data.trec import Qrels, Run, read_qrels, read_run
from rankwise.errors import DataError, RankwiseError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

log = logging.getLogger(__name__)


@dataclass
class LoadedRun:
    name: str
    path: Path  # the TREC file
    run: Run
    lines: dict[str, int] = field(default_factory=dict)  # first line of each query in the file
    folder: Path | None = None
    data: Path | None = None  # BEIR folder named by the run folder's config
    split: str | None = None


def load_run(spec: str | Path, *, lenient: bool = False, name: str | None = None) -> LoadedRun:
    path = Path(spec)
    if not path.exists():
        raise RankwiseError(f"{path}: no such run file or run folder")
    folder = data = split = None
    if path.is_dir():
        folder, path = path, path / "run.trec"
        if not path.is_file():
            raise RankwiseError(f"{folder}: not a run folder (no run.trec inside)")
        cfg = folder / "config.toml"
        if cfg.is_file():
            try:
                table = tomllib.loads(cfg.read_text(encoding="utf-8")).get("run", {})
            except tomllib.TOMLDecodeError as exc:
                raise DataError(str(exc), path=cfg) from None
            data = Path(table["data"]) if table.get("data") else None
            split = table.get("eval_split") or (
                table.get("split") if table.get("command") in ("eval", "rerank") else None
            )
    lines: dict[str, int] = {}
    run = read_run(path, lenient=lenient, lines=lines)
    label = name or (folder.name if folder else path.stem)
    return LoadedRun(label, path, run, lines, folder, data, split)


def resolve_qrels(
    runs: list[LoadedRun], *, qrels: Path | None = None, data: Path | None = None, split: str | None = None
) -> tuple[Qrels, str]:
    """The qrels to score against: a qrels file, else a BEIR folder and split, else those named by
    the first run folder that names them. Returns the qrels and where they came from."""
    if qrels is not None:
        return read_qrels(qrels), str(qrels)
    for r in runs:
        if data is None and r.data is not None:
            data, split = r.data, split or r.split
    if data is None:
        raise RankwiseError(
            "no qrels: pass qrels=FILE, or data=BEIR_FOLDER and split=SPLIT, or a run folder whose config.toml names them"
        )
    path = find_file(Path(data) / "qrels", f"{split or 'test'}.tsv")
    return read_qrels(path), str(path)


def check_queries(loaded: LoadedRun, qrels: Qrels, *, lenient: bool = False) -> LoadedRun:
    """A run query missing from the qrels is an error naming the run file and line (the run was
    likely made for another split); ``lenient`` drops such queries with one counted warning."""
    unknown = [q for q in loaded.run if q not in qrels]
    if not unknown:
        return loaded
    if not lenient:
        first = min(unknown, key=lambda q: loaded.lines.get(q, 0))
        raise DataError(
            f"query {first!r} is not in the qrels ({len(unknown)} such queries; lenient=True drops them)",
            path=loaded.path,
            line=loaded.lines.get(first),
            field="qid",
        )
    log.warning("%s: dropped %d queries that the qrels do not judge", loaded.path, len(unknown))
    loaded.run = {q: r for q, r in loaded.run.items() if q in qrels}
    return loaded


def align_queries(loaded: list[LoadedRun], qrels: Qrels, *, common: bool = False) -> tuple[Qrels, str]:
    """Runs compared query by query must cover the same judged queries: a query one run lacks
    would count as 0 for it and fake a significant difference (e.g. a test-split run against a
    dev-split one). Different coverage is an error naming the counts; ``common=True`` compares
    over the queries every run covers instead. Returns the qrels to use and a note for the table."""
    covered = {r.name: set(r.run) & set(qrels) for r in loaded}
    if len({frozenset(c) for c in covered.values()}) <= 1:
        return qrels, ""
    if not common:
        counts = ", ".join(f"{name} covers {len(c)}" for name, c in covered.items())
        raise RankwiseError(
            f"the runs cover different judged queries ({counts} of {len(qrels)}); compare runs of the same split, "
            "or common=True to compare over the queries all of them cover"
        )
    keep = set.intersection(*covered.values())
    if not keep:
        raise RankwiseError("the runs have no judged query in common")
    for r in loaded:
        r.run = {q: ranking for q, ranking in r.run.items() if q in keep}
    return {
        q: j for q, j in qrels.items() if q in keep
    }, f"the {len(keep)} of {len(qrels)} judged queries all runs cover"


def coverage_note(run: Run, qrels: Qrels) -> str:
    """Empty when the run covers every judged query; else how many it covers (the rest score 0)."""
    covered = sum(1 for q in qrels if q in run)
    if covered == len(qrels):
        return ""
    return f"the run covers {covered} of {len(qrels)} judged queries; the other {len(qrels) - covered} score 0"

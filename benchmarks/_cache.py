"""Finished benchmark runs, cached on disk and keyed by their settings and by the code they ran on.

A run records the sha256 of every ``rankwise`` source file it had imported when it finished; a
later session reuses it only while each of those files is unchanged, so an edit to the code a
run used re-runs it, and an edit elsewhere (a new module) does not.

A run that keeps files (checkpoints of a killed training, mined negatives) resumes from them only
on the code it started on: ``workdir(settings)`` records every rankwise and benchmark source file
when a run starts (not only those imported by then: a module the run imports later, say the miner,
may have written some of its files) and empties the folder when any of them has changed since, or
when the folder holds a finished run that is stale.

The cache lives on one machine, and a session may start on a fresh one. A study whose runs take
longer than a session gives ``keep``, a folder in the repository: each finished run's record is
also written there (gzip'd JSON, ``shrink`` applied first) and committed, so that a later session
on any machine reuses it on the same terms (same settings, same code).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rankwise.io import atomic_path, cache_dir, write_json


def _sha(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def code_in_use() -> dict[str, str]:
    """What a run's result depends on besides its settings: sha256 of each imported rankwise and
    benchmark module's file (the running script's too) and ``version:NAME`` of each library."""
    from benchmarks._machine import versions

    out = {}
    for name, mod in sorted(sys.modules.items()):
        file = getattr(mod, "__file__", None)
        if name.startswith(("rankwise", "benchmarks")) and file and file.endswith(".py"):
            out[name] = _sha(file)
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    if main and Path(main).resolve().parent == Path(__file__).resolve().parent:  # a benchmark run as a script
        out[f"script:{Path(main).name}"] = _sha(main)
    out |= {f"version:{k}": str(v) for k, v in versions().items()}
    return out


def _source_files() -> dict[str, Path]:
    """``file:<package>/<path>`` -> path, for every source file of rankwise and of the benchmarks."""
    import rankwise

    roots = {"rankwise": Path(rankwise.__file__).resolve().parent, "benchmarks": Path(__file__).resolve().parent}
    return {f"file:{pkg}/{f.relative_to(root)}": f for pkg, root in roots.items() for f in sorted(root.rglob("*.py"))}


def code_tree() -> dict[str, str]:
    """sha256 of every rankwise and benchmark source file, imported or not, and the libraries'
    versions: what the files of a run cut off may have come from."""
    from benchmarks._machine import versions

    files = {name: _sha(str(path)) for name, path in _source_files().items()}
    return files | {f"version:{k}": str(v) for k, v in versions().items()}


class RunCache:
    """``get(settings)``: the stored result of a finished run, or None; ``put(settings, result)``;
    ``run(settings, make)``: ``get``, or ``make(workdir)`` then ``put``; ``folder(settings)``: where the
    run keeps files (e.g. its trained model). ``keep``: a committed
    folder that holds every finished run's record too; ``shrink(result)``: what of a result it holds."""

    def __init__(
        self,
        benchmark: str,
        keep: Path | None = None,
        shrink: Callable[[dict[str, Any]], dict[str, Any]] = lambda result: result,
    ) -> None:
        self.root = cache_dir() / "bench" / benchmark
        self.keep, self.shrink = keep, shrink

    def key(self, settings: dict[str, Any]) -> str:
        return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def folder(self, settings: dict[str, Any]) -> Path:
        path = self.root / self.key(settings)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def workdir(self, settings: dict[str, Any]) -> Path:
        """The folder for a run about to start or resume; emptied when its files came from other code."""
        folder = self.folder(settings)
        started = folder / "started.json"
        finished_stale = (folder / "result.json").is_file() and self.get(settings) is None
        if finished_stale or (started.is_file() and not same_code(json.loads(started.read_text())["code"])):
            shutil.rmtree(folder)
            folder.mkdir(parents=True)
        if not started.is_file():
            write_json(started, {"settings": settings, "code": code_tree()})
        return folder

    def started(self, settings: dict[str, Any]) -> bool:
        """Whether a run began on this code and was cut off: ``workdir`` resumes it from its files."""
        folder = self.root / self.key(settings)
        started = folder / "started.json"
        return (
            started.is_file()
            and not (folder / "result.json").is_file()
            and same_code(json.loads(started.read_text())["code"])
        )

    def kept(self, settings: dict[str, Any]) -> Path | None:
        """The committed record's path (None without ``keep``)."""
        return None if self.keep is None else self.keep / f"{self.key(settings)}.json.gz"

    def get(self, settings: dict[str, Any]) -> dict[str, Any] | None:
        path, kept = self.root / self.key(settings) / "result.json", self.kept(settings)
        if path.is_file():
            saved = json.loads(path.read_text())
        elif kept is not None and kept.is_file():
            saved = json.loads(gzip.decompress(kept.read_bytes()))
        else:
            return None
        if not same_code(saved["code"]):
            return None
        if kept is not None and not kept.is_file():  # finished before ``keep`` was given
            self._keep(saved)
        return saved["result"]

    def run(self, settings: dict[str, Any], make: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
        """The stored result of ``settings``, or ``make(workdir(settings))``'s, stored first."""
        found = self.get(settings)
        if found is None:
            found = make(self.workdir(settings))
            self.put(settings, found)
        return found

    def put(self, settings: dict[str, Any], result: dict[str, Any]) -> None:
        record = {"settings": settings, "code": code_in_use(), "result": result}
        write_json(self.folder(settings) / "result.json", record)
        self._keep(record)

    def _keep(self, record: dict[str, Any]) -> None:
        kept = self.kept(record["settings"])
        if kept is not None:
            text = json.dumps(record | {"result": self.shrink(record["result"])}, sort_keys=True)
            with atomic_path(kept) as tmp:
                tmp.write_bytes(gzip.compress(text.encode(), mtime=0))  # mtime 0: same record, same bytes


def same_code(code: dict[str, str]) -> bool:
    """Whether every module, script and library version in ``code`` is unchanged in this checkout."""
    from benchmarks._machine import versions

    now, sources = versions(), None
    for name, sha in code.items():
        if name.startswith("version:"):
            if str(now.get(name[len("version:") :])) != sha:
                return False
            continue
        if name.startswith("file:"):
            sources = sources if sources is not None else _source_files()
            file = sources.get(name)
            if file is None or _sha(str(file)) != sha:
                return False
            continue
        if name.startswith("script:"):
            file = Path(__file__).resolve().parent / name[len("script:") :]
            if not file.is_file() or _sha(str(file)) != sha:
                return False
            continue
        mod = sys.modules.get(name)
        file = getattr(mod, "__file__", None) if mod else None
        if file is None:
            try:
                __import__(name)
            except ImportError:  # the module is gone: the run's code is not this code
                return False
            file = sys.modules[name].__file__
        if _sha(file) != sha:
            return False
    return True

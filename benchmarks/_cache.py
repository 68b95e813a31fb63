"""Finished benchmark runs, cached on disk and keyed by their settings and by the code they ran on.

A run records the sha256 of every ``rankwise`` source file it had imported when it finished; a
later session reuses it only while each of those files is unchanged, so an edit to the code a
run used re-runs it, and an edit elsewhere (a new module) does not.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from rankwise.io import cache_dir, write_json


def _sha(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def code_in_use() -> dict[str, str]:
    """sha256 of each imported rankwise module's file."""
    out = {}
    for name, mod in sorted(sys.modules.items()):
        file = getattr(mod, "__file__", None)
        if name.startswith("rankwise") and file and file.endswith(".py"):
            out[name] = _sha(file)
    return out


class RunCache:
    """``get(settings)``: the stored result of a finished run, or None; ``put(settings, result)``;
    ``folder(settings)``: where the run keeps files (e.g. its trained model)."""

    def __init__(self, benchmark: str) -> None:
        self.root = cache_dir() / "bench" / benchmark

    def key(self, settings: dict[str, Any]) -> str:
        return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def folder(self, settings: dict[str, Any]) -> Path:
        path = self.root / self.key(settings)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def get(self, settings: dict[str, Any]) -> dict[str, Any] | None:
        path = self.root / self.key(settings) / "result.json"
        if not path.is_file():
            return None
        saved = json.loads(path.read_text())
        for name, sha in saved["code"].items():
            mod = sys.modules.get(name)
            file = getattr(mod, "__file__", None) if mod else None
            if file is None:
                try:
                    __import__(name)
                except ImportError:  # the module is gone: the run's code is not this code
                    return None
                file = sys.modules[name].__file__
            if _sha(file) != sha:
                return None
        return saved["result"]

    def put(self, settings: dict[str, Any], result: dict[str, Any]) -> None:
        write_json(
            self.folder(settings) / "result.json", {"settings": settings, "code": code_in_use(), "result": result}
        )

"""Atomic file output: a crash mid-write never leaves a half-written result behind."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: str | Path, *, is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; move it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if is_dir:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        # mkstemp/mkdtemp create owner-only files; give results the permissions a plain open() would
        umask = os.umask(0)
        os.umask(umask)
        if tmp.exists():
            tmp.chmod((0o777 if is_dir else 0o666) & ~umask)
        if is_dir:  # what libraries wrote inside (safetensors writes 0600) follows the umask too
            for child in tmp.rglob("*"):
                if not child.is_symlink():
                    child.chmod((0o777 if child.is_dir() else 0o666) & ~umask)
        if is_dir and path.exists():
            # os.replace cannot swap a non-empty directory: move the old one aside first.
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def check_writable(path: str | Path, *, is_dir: bool = True) -> Path:
    """Create ``path`` (a folder) or its parent folder now and prove it takes files, so an output
    that cannot be written is reported before any work, in one line."""
    from rankwise.errors import RankwiseError

    path = Path(path)
    folder = path if is_dir else path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".rankwise-write-test.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise RankwiseError(f"cannot write to {folder}: {exc.strerror or exc}") from None
    return path


def cache_dir() -> Path:
    """rankwise's cache (built datasets, corpus embeddings): ``$RANKWISE_CACHE`` or ``~/.cache/rankwise``."""
    return Path(os.environ.get("RANKWISE_CACHE", Path.home() / ".cache" / "rankwise"))

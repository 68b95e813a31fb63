"""``rankwise data get beir:<name>``: download and unpack a BEIR dataset zip (for users with a network)."""

from __future__ import annotations

import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

from rankwise.errors import DataError, RankwiseError
from rankwise.io import atomic_path

BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{name}.zip"


def parse_spec(spec: str) -> tuple[str, str]:
    source, _, name = spec.partition(":")
    if source != "beir" or not name or "/" in name:
        raise RankwiseError(f"unknown dataset {spec!r}: expected beir:<name>, e.g. beir:scifact")
    return source, name


def download(url: str, dest: Path, progress: Callable[[int, int | None], None] | None = None) -> Path:
    """Stream ``url`` to ``dest`` atomically; ``progress(bytes_so_far, total_or_None)`` after each chunk."""
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, atomic_path(dest) as tmp, open(tmp, "wb") as out:
            total = resp.headers.get("Content-Length")
            total_n = int(total) if total and total.isdigit() else None
            done = 0
            while chunk := resp.read(1 << 20):
                out.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total_n)
    except (urllib.error.URLError, OSError) as exc:
        raise RankwiseError(f"cannot download {url}: {getattr(exc, 'reason', exc)}") from None
    return dest


def unpack_beir_zip(zip_path: Path, out_dir: Path, name: str) -> Path:
    """Unpack into ``out_dir/name`` and check it is a BEIR folder. Members escaping the folder are refused."""
    target = out_dir / name
    try:
        zf = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile:
        raise DataError("not a zip file", path=zip_path) from None
    with zf, tempfile.TemporaryDirectory(dir=out_dir) as scratch:
        root = Path(scratch).resolve()
        for member in zf.namelist():
            if not (root / member).resolve().is_relative_to(root):
                raise DataError(f"unsafe member path {member!r}", path=zip_path)
        zf.extractall(root)
        # BEIR zips hold one top folder <name>/; accept a flat zip too.
        found = next((p.parent for p in sorted(root.rglob("corpus.jsonl*"))), None)
        if found is None or not (found / "qrels").is_dir():
            raise DataError("zip holds no BEIR folder (corpus.jsonl and qrels/)", path=zip_path)
        with atomic_path(target, is_dir=True) as tmp:
            shutil.rmtree(tmp)
            shutil.move(str(found), str(tmp))
    return target


def get_dataset(
    spec: str, out_dir: str | Path, *, url: str | None = None, progress: Callable[[int, int | None], None] | None = None
) -> Path:
    """Fetch ``beir:<name>`` into ``out_dir/<name>``; ``url`` overrides the BEIR mirror (a file:// URL works)."""
    _, name = parse_spec(spec)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    zip_path = out_dir / f"{name}.zip"
    download(url or BEIR_URL.format(name=name), zip_path, progress)
    try:
        return unpack_beir_zip(zip_path, out_dir, name)
    finally:
        zip_path.unlink(missing_ok=True)

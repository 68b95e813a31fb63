"""Line-located JSONL reading (plain or .gz) shared by every loader."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rankwise.errors import DataError


def open_text(path: str | Path) -> io.TextIOBase:
    """UTF-8 text, plain or gzip; a byte-order mark (editors on Windows write one) is skipped."""
    path = Path(path)
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig")
    return open(path, encoding="utf-8-sig")


def find_file(folder: Path, stem: str) -> Path:
    """``stem`` or ``stem.gz`` inside ``folder``; a clear error when neither exists."""
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise DataError(f"missing file: expected {stem} or {stem}.gz", path=folder)


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)``; blank lines are skipped, anything else must be a JSON object."""
    with open_text(path) as fh:
        try:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(
                        f"malformed JSON ({exc.msg} at column {exc.colno})", path=path, line=lineno
                    ) from None
                if not isinstance(obj, dict):
                    raise DataError(f"expected a JSON object, got {type(obj).__name__}", path=path, line=lineno)
                yield lineno, obj
        except (UnicodeDecodeError, EOFError, gzip.BadGzipFile) as exc:
            raise DataError(f"cannot read file: {exc}", path=path) from None


def require_str(obj: dict[str, Any], field: str, path: str | Path, line: int, *, allow_empty: bool = False) -> str:
    if field not in obj:
        raise DataError("missing field", path=path, line=line, field=field)
    value = obj[field]
    if isinstance(value, (int, float)) and not isinstance(value, bool) and field.endswith("_id"):
        value = str(value)  # numeric ids are common in the wild; keep them as their text
    if not isinstance(value, str):
        raise DataError(f"expected a string, got {type(value).__name__}", path=path, line=line, field=field)
    if not allow_empty and not value.strip():
        raise DataError("empty text", path=path, line=line, field=field)
    return value

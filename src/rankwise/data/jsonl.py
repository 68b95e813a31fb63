"""Line-located JSONL reading (plain or .gz) shared by every loader."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rankwise.errors import DataError


class _Lines:
    """UTF-8 lines decoded one at a time, so a byte that is not UTF-8 is reported with its line
    (a text wrapper decodes in chunks and can only name a byte offset)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.raw = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")

    def __enter__(self) -> _Lines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.raw.close()

    def __iter__(self) -> Iterator[str]:
        for lineno, raw in enumerate(self.raw, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})",
                    path=self.path,
                    line=lineno,
                ) from None
            yield line.removeprefix("\ufeff") if lineno == 1 else line


def open_text(path: str | Path) -> _Lines:
    """UTF-8 text lines, plain or gzip; a byte-order mark (editors on Windows write one) is skipped."""
    return _Lines(Path(path))


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


def require_id(obj: dict[str, Any], field: str, path: str | Path, line: int) -> str:
    """An id: a non-empty string (a number is taken as its text) without whitespace, which a TREC
    run or qrels line could not hold (its columns are whitespace-separated)."""
    value = require_str(obj, field, path, line)
    check_id(value, path, line, field)
    return value


def check_id(value: str, path: str | Path, line: int | None, field: str) -> None:
    if any(c.isspace() for c in value):
        raise DataError(
            f"id {value!r} contains whitespace, which TREC run files cannot hold", path=path, line=line, field=field
        )

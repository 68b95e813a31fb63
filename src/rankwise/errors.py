"""User-facing errors: each names where the problem is (file, line, field) and what is wrong."""

from __future__ import annotations

from pathlib import Path


class RankwiseError(Exception):
    """Base class for errors the CLI reports as one clear line instead of a traceback."""


class DataError(RankwiseError):
    """Bad input data, located as precisely as the format allows."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = None if path is None else str(path)
        self.line = line
        self.field = field
        self.reason = message
        where = []
        if self.path is not None:
            where.append(self.path if line is None else f"{self.path}:{line}")
        if field is not None:
            where.append(f"field '{field}'")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class ConfigError(RankwiseError):
    """A bad option or configuration value; names the parameter. ``param``: the library
    argument at fault, when one is; the message then starts ``param=value:`` and the command line
    says it as its flag (``--param value:``)."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        self.param = param
        super().__init__(message)

"""``name:key=value,key=value`` option strings (``--negatives``, ``--batching``, ``--curriculum``,
``--false-negatives``), parsed into typed options with errors that name the parameter."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import Any, TypeVar

from rankwise.errors import ConfigError

T = TypeVar("T")


def split_spec(spec: str) -> tuple[str, dict[str, str]]:
    name, _, rest = spec.partition(":")
    params: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = part.partition("=")
        if not eq:
            raise ConfigError(f"{spec!r}: expected key=value, got {part!r}")
        params[key.strip()] = value.strip()
    return name.strip().lower(), params


def convert(option: str, key: str, value: str, kind: Any) -> Any:
    kind = {"int": int, "float": float, "str": str, "bool": bool}.get(kind, kind) if isinstance(kind, str) else kind
    text = str(kind)
    try:
        if value.lower() == "none" and "None" in text:
            return None
        if "tuple" in text:  # a rank window "a-b"
            a, _, b = value.partition("-")
            return (int(a), int(b))
        if kind is bool or text == "bool":
            if value.lower() not in {"true", "false", "1", "0", "yes", "no"}:
                raise ValueError(value)
            return value.lower() in {"true", "1", "yes"}
        if "int" in text and "float" not in text:
            return int(value)
        if "float" in text:
            return float(value)
        return value
    except ValueError:
        raise ConfigError(f"{option}: parameter {key!r} has a bad value {value!r} (expected {text.replace('typing.', '')})") from None


def parse_options(option: str, params: dict[str, str], cls: type[T], **fixed: Any) -> T:
    """Build the dataclass ``cls`` from string ``params``; unknown keys name the ones allowed."""
    assert is_dataclass(cls)
    known = {f.name: f for f in fields(cls)}
    values: dict[str, Any] = dict(fixed)
    for key, value in params.items():
        if key not in known or key in fixed:
            allowed = ", ".join(k for k in known if k not in fixed)
            raise ConfigError(f"{option}: unknown parameter {key!r}; it takes: {allowed}")
        values[key] = convert(option, key, value, known[key].type)
    try:
        return cls(**values)
    except ValueError as exc:
        raise ConfigError(f"{option}: {exc}") from None

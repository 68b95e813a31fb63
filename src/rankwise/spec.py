"""The one grammar of option strings (``--loss``, ``--negatives``, ``--batching``,
``--false-negatives``, ``--curriculum``), parsed once at the boundary into typed objects.

A term is ``name``, ``name:key=value,key=value`` or ``name:variant,key=value`` (a bare first
value sets the part's variant parameter, e.g. ``lambdaloss:ndcg2pp``). Losses may be summed:
``infonce+0.1*tcm:margin_plus=0.8``. Values stay strings here; :func:`convert` turns each into
the type its parameter declares, with an error naming the parameter.
"""

from __future__ import annotations

import re
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from typing import Any, TypeVar

from rankwise.errors import ConfigError

T = TypeVar("T")

_WEIGHT = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*\*\s*(.+)$")


@dataclass(frozen=True)
class Term:
    """One ``[weight*]name[:variant][,key=value...]`` term of an option string."""

    name: str
    params: dict[str, str] = field(default_factory=dict)
    variant: str | None = None
    weight: float = 1.0


def parse_term(text: str, option: str = "option") -> Term:
    """``"0.1*tcm:margin_plus=0.8"`` -> ``Term("tcm", {"margin_plus": "0.8"}, None, 0.1)``."""
    weight = 1.0
    m = _WEIGHT.match(text)
    if m:
        weight, text = float(m.group(1)), m.group(2)
    name, _, rest = text.partition(":")
    params: dict[str, str] = {}
    variant = None
    for i, part in enumerate(filter(None, (p.strip() for p in rest.split(",")))):
        key, eq, value = part.partition("=")
        if not eq:
            if i == 0:
                variant = part
                continue
            raise ConfigError(f"{option}: expected key=value, got {part!r}")
        if key.strip() in params:
            raise ConfigError(f"{option}: parameter {key.strip()!r} given twice")
        params[key.strip()] = value.strip()
    name = name.strip()
    name = name if "." in name else name.lower()  # an importable package.module.Name keeps its case
    if not name:
        raise ConfigError(f"{option}: no name given")
    return Term(name, params, variant, weight)


def parse_sum(text: str, option: str = "option") -> list[Term]:
    """``"infonce+0.1*tcm"`` -> two terms. A ``+`` inside a number (``1e+3``) does not split."""
    parts = re.split(r"(?<![0-9][eE])\+", text)
    if any(not p.strip() for p in parts):
        raise ConfigError(f"{option}: empty term in {text!r}")
    return [parse_term(p, option) for p in parts]


def convert(option: str, key: str, value: str, target: Any) -> Any:
    """``value`` as the type ``target`` (a type or its annotation string); errors name ``key``."""
    target = (
        {"int": int, "float": float, "str": str, "bool": bool}.get(target, target)
        if isinstance(target, str)
        else target
    )
    text = getattr(target, "__name__", str(target)) if isinstance(target, type) else str(target)
    try:
        if value.lower() == "none" and "None" in text:
            return None
        if "tuple" in text:  # a rank window "a-b"
            a, _, b = value.partition("-")
            return (int(a), int(b))
        if target is bool or text == "bool":
            if value.lower() not in {"true", "false", "1", "0", "yes", "no"}:
                raise ValueError(value)
            return value.lower() in {"true", "1", "yes"}
        if "int" in text and "float" not in text:
            if "str" in text:  # int | str (e.g. listmle's top_k="relevant")
                try:
                    return int(value)
                except ValueError:
                    return value
            return int(value)
        if "float" in text:
            return float(value)
        return value
    except ValueError:
        expected = text.replace("typing.", "")
        raise ConfigError(f"{option}: parameter {key!r} has a bad value {value!r} (expected {expected})") from None


def parse_options(option: str, params: dict[str, str], cls: type[T], **fixed: Any) -> T:
    """Build the dataclass ``cls`` from string ``params``; unknown keys name the ones allowed."""
    if not is_dataclass(cls):
        raise TypeError(f"{cls} is not a dataclass")
    known = {f.name: f for f in fields(cls) if f.init}
    values: dict[str, Any] = dict(fixed)
    for key, value in params.items():
        if key not in known or key in fixed:
            allowed = ", ".join(k for k in known if k not in fixed) or "none"
            raise ConfigError(f"{option}: unknown parameter {key!r}; it takes: {allowed}")
        values[key] = convert(option, key, value, known[key].type)
    try:
        return cls(**values)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{option}: {exc}") from None


def render(name: str, obj: Any, fixed: dict[str, Any] | None = None) -> str:
    """The spec string of a dataclass ``obj`` registered as ``name``: its non-default parameters."""
    parts = []
    for f in fields(obj):
        if not f.init or (fixed and f.name in fixed):
            continue
        default = (
            f.default
            if f.default is not MISSING
            else (f.default_factory() if f.default_factory is not MISSING else MISSING)
        )
        value = getattr(obj, f.name)
        if value == default:
            continue
        if isinstance(value, tuple):
            value = "-".join(str(v) for v in value)
        elif isinstance(value, bool):
            value = str(value).lower()
        parts.append(f"{f.name}={value}")
    return name + (":" + ",".join(parts) if parts else "")

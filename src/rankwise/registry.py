"""The one registry mechanism of every swappable part, found by name: losses, negatives
strategies, batch samplers, false-negative weighting, curricula, model families, feature scorers.

Each part is a dataclass whose fields are its hyperparameters. ``registry.resolve("tas:clusters=64")``
builds it from an option string; an object passes through unchanged, so a user can hand in their
own subclass. ``registry.spec_of(obj)`` writes the option string back (for ``config.toml``); a
user's own class is written as its importable name (``package.module.Class``), which ``resolve``
imports again, so a run folder with a user's part re-creates it (an import, never code from the
folder).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, is_dataclass
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BeforeValidator, PlainSerializer

from rankwise.errors import ConfigError
from rankwise.spec import parse_options, parse_term, render

T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    name: str
    cls: type
    fixed: dict[str, Any]
    variant: str | None


def _import(name: str, option: str, base: type) -> type:
    """``package.module.Class``, a subclass of ``base`` (a user's part named in config.toml)."""
    import importlib

    module, _, attr = name.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"{option}: cannot import {name!r} ({exc})") from None
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ConfigError(f"{option}: {name!r} is not a {base.__name__}")
    return cls


class Registry(Generic[T]):
    def __init__(self, part: str, base: type[T]) -> None:
        self.part, self.base = part, base
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, *, variant: str | None = None, **fixed: Any) -> Callable[[type], type]:
        """Class decorator: ``@NEGATIVES.register("bm25", method="bm25")`` (``fixed`` values are set, not parsed)."""

        def add(cls: type) -> type:
            self._entries[name] = Entry(name, cls, fixed, variant)
            return cls

        return add

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def get(self, name: str) -> Any:
        """The registered class (or function) of ``name``."""
        return self.entry(name).cls

    def entry(self, name: str) -> Entry:
        if name not in self._entries:
            raise ConfigError(f"unknown {self.part} {name!r}; available: {', '.join(self.names())}")
        return self._entries[name]

    def create(self, spec: str) -> T:
        option = f"{self.part} {spec!r}"
        term = parse_term(spec, option)
        entry = self._entries.get(term.name)
        if entry is None and "." in term.name:
            entry = Entry(term.name, _import(term.name, option, self.base), {}, None)
        if entry is None:
            raise ConfigError(f"{option}: unknown {self.part} {term.name!r}; available: {', '.join(self.names())}")
        params = dict(term.params)
        if term.variant is not None:
            if entry.variant is None:
                raise ConfigError(f"{option}: expected key=value, got {term.variant!r}")
            params[entry.variant] = term.variant
        if term.weight != 1.0:
            raise ConfigError(f"{option}: a weight applies to loss terms only")
        return parse_options(option, params, entry.cls, **entry.fixed)

    def resolve(self, value: str | T | None) -> T | None:
        """A spec string is parsed; None and objects of the part's class pass through."""
        if value is None or isinstance(value, self.base):
            return value
        if isinstance(value, str):
            return self.create(value)
        raise ConfigError(
            f"{self.part}: expected an option string or a {self.base.__name__}, got {type(value).__name__}"
        )

    def spec_of(self, obj: T | None) -> str | None:
        """The option string that builds ``obj`` again (a user's own class: its class name)."""
        if obj is None:
            return None
        for entry in self._entries.values():
            if type(obj) is entry.cls and all(getattr(obj, k) == v for k, v in entry.fixed.items()):
                return render(entry.name, obj, entry.fixed)
        name = f"{type(obj).__module__}.{type(obj).__qualname__}"
        return render(name, obj) if is_dataclass(obj) else name

    def field(self) -> Any:
        """A pydantic field type: accepts a spec string or an object, serialises to the spec string."""
        return Annotated[Any, BeforeValidator(self.resolve), PlainSerializer(self.spec_of, return_type=Any)]


FAMILIES: Registry = Registry("model family", object)  # name -> Family class (rankwise.families)

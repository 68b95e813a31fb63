"""Name -> loss resolution: ``get("infonce:temperature=0.05")`` or ``get("infonce", temperature=0.05)``."""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

from rankwise.errors import ConfigError
from rankwise.losses.listwise import infonce

LossFn = Callable[..., Any]

_REGISTRY: dict[str, LossFn] = {"infonce": infonce}


def available() -> list[str]:
    return sorted(_REGISTRY)


def _coerce(text: str) -> Any:
    low = text.strip().lower()
    if low in {"true", "false"}:
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text.strip()


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"name:k=v,k2=v2"`` -> ``("name", {"k": v, "k2": v2})``."""
    name, _, rest = spec.partition(":")
    params: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = part.partition("=")
        if not eq:
            raise ConfigError(f"loss {spec!r}: expected key=value, got {part!r}")
        params[key.strip()] = _coerce(value)
    return name.strip().lower(), params


def get(spec: str, **hyperparameters: Any) -> LossFn:
    """The loss named by ``spec`` with its hyperparameters bound; unknown names and parameters are errors."""
    name, params = parse_spec(spec)
    params.update(hyperparameters)
    if name not in _REGISTRY:
        raise ConfigError(f"unknown loss {name!r}; available: {', '.join(available())}")
    fn = _REGISTRY[name]
    allowed = {p.name for p in inspect.signature(fn).parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY} - {"weights"}
    for key in params:
        if key not in allowed:
            raise ConfigError(f"loss {name!r} has no parameter {key!r}; it takes: {', '.join(sorted(allowed)) or 'none'}")
    bound = functools.partial(fn, **params)
    functools.update_wrapper(bound, fn)
    # validate values now (e.g. temperature <= 0) rather than at the first step
    import torch

    bound(torch.zeros(1, 2), torch.tensor([[1.0, 0.0]]))
    return bound

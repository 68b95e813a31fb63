"""Name -> loss resolution from the CLI or a config.

``get("infonce:temperature=0.05")``, ``get("lambdaloss:ndcg2pp")`` (a bare first value sets the
loss's variant parameter) or ``get("mw", scope="per_query")``. Unknown names and parameters,
and bad values, are errors naming the parameter.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

import torch

from rankwise.errors import ConfigError
from rankwise.losses import distillation, distribution, listwise, metric, pairwise, pointwise, policy, regularisers

LossFn = Callable[..., Any]

_REGISTRY: dict[str, LossFn] = {
    "sigmoid": pointwise.sigmoid,
    "mse": pointwise.mse,
    "ranknet": pairwise.ranknet,
    "hinge": pairwise.hinge,
    "mw": pairwise.mw,
    "lambdarank": pairwise.lambdarank,
    "infonce": listwise.infonce,
    "listnet": listwise.listnet,
    "listmle": listwise.listmle,
    "plistmle": listwise.plistmle,
    "lambdaloss": metric.lambdaloss,
    "approxndcg": metric.approxndcg,
    "neuralndcg": metric.neuralndcg,
    "wasserstein": distribution.wasserstein,
    "decoupled_softmax": listwise.decoupled_softmax,
    "soft_topk": listwise.soft_topk,
    "lipo": pairwise.lipo,
    "diffkendall": pairwise.diffkendall,
    "margin_mse": distillation.margin_mse,
    "kl": distillation.kl,
    "pg_rank": policy.pg_rank,
    "tcm": regularisers.tcm,
}

# ``name:value`` without ``key=`` sets this parameter
_VARIANT = {"lambdaloss": "scheme", "mw": "scope"}

# losses that need the teacher's scores at call time
NEEDS_TEACHER = frozenset({"margin_mse", "kl"})


def available() -> list[str]:
    return sorted(_REGISTRY)


def _coerce(text: str) -> Any:
    low = text.strip().lower()
    if low in {"true", "false"}:
        return low == "true"
    if low == "none":
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text.strip()


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"name:k=v,k2=v2"`` -> ``("name", {"k": v, "k2": v2})``; ``"name:variant"`` sets the variant."""
    name, _, rest = spec.partition(":")
    name = name.strip().lower()
    params: dict[str, Any] = {}
    for i, part in enumerate(filter(None, (p.strip() for p in rest.split(",")))):
        key, eq, value = part.partition("=")
        if not eq:
            if i == 0 and name in _VARIANT:
                params[_VARIANT[name]] = part
                continue
            raise ConfigError(f"loss {spec!r}: expected key=value, got {part!r}")
        params[key.strip()] = _coerce(value)
    return name, params


def get(spec: str, **hyperparameters: Any) -> LossFn:
    """The loss named by ``spec`` with its hyperparameters bound, checked on a tiny batch now
    rather than at the first training step."""
    name, params = parse_spec(spec)
    params.update(hyperparameters)
    if name not in _REGISTRY:
        raise ConfigError(f"unknown loss {name!r}; available: {', '.join(available())}")
    fn = _REGISTRY[name]
    allowed = {p.name for p in inspect.signature(fn).parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY} - {"weights", "teacher_scores"}
    for key in params:
        if key not in allowed:
            raise ConfigError(f"loss {name!r} has no parameter {key!r}; it takes: {', '.join(sorted(allowed)) or 'none'}")
    bound = functools.partial(fn, **params)
    functools.update_wrapper(bound, fn)
    probe = {"teacher_scores": torch.zeros(2, 16)} if name in NEEDS_TEACHER else {}
    try:
        bound(torch.zeros(2, 16), torch.eye(2, 16), **probe)
    except ConfigError as exc:
        raise ConfigError(f"loss {name!r}: {exc}") from None
    return bound

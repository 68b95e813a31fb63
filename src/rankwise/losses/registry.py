"""Name -> loss resolution, in the one spec grammar of :mod:`rankwise.spec`.

``get("infonce:temperature=0.05")``, ``get("lambdaloss:ndcg2pp")`` (a bare first value sets the
loss's variant parameter), ``get("mw", scope="per_query")`` or a sum ``get("infonce+0.1*tcm")``.
Every registered loss carries its facts (:class:`~rankwise.losses._common.LossFacts`) beside its
function; the registry reads them. Unknown names and parameters, and bad values, are errors
naming the parameter.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch

from rankwise.errors import ConfigError
from rankwise.losses import distillation, distribution, listwise, metric, pairwise, pointwise, policy, regularisers
from rankwise.losses._common import LossFacts
from rankwise.spec import Term, convert, parse_sum

_REGISTRY: dict[str, Any] = {
    name: fn
    for module in (pointwise, pairwise, listwise, metric, distribution, distillation, policy, regularisers)
    for name, fn in vars(module).items()
    if callable(fn) and isinstance(getattr(fn, "facts", None), LossFacts) and fn.__module__ == module.__name__
}

_NOT_HYPERPARAMETERS = {"weights", "teacher_scores", "reduction"}


def available() -> list[str]:
    return sorted(_REGISTRY)


def facts(name: str) -> LossFacts:
    return _REGISTRY[name].facts


NEEDS_TEACHER = frozenset(n for n, fn in _REGISTRY.items() if fn.facts.needs_teacher)


def hyperparameters(name: str) -> dict[str, inspect.Parameter]:
    """The keyword-only hyperparameters of a registered loss, with their annotations and defaults."""
    params = inspect.signature(_REGISTRY[name]).parameters.values()
    return {
        p.name: p for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in _NOT_HYPERPARAMETERS
    }


def _allowed(name: str) -> dict[str, inspect.Parameter]:
    if name not in _REGISTRY:
        raise ConfigError(f"unknown loss {name!r}; available: {', '.join(available())}")
    return hyperparameters(name)


def _check_key(name: str, key: str, allowed: dict[str, inspect.Parameter]) -> None:
    if key not in allowed:
        raise ConfigError(f"loss {name!r} has no parameter {key!r}; it takes: {', '.join(sorted(allowed)) or 'none'}")


class Loss:
    """A registered loss with its hyperparameters bound; called as ``loss(scores, labels, mask, **kw)``."""

    def __init__(self, name: str, **params: Any) -> None:
        allowed = _allowed(name)
        for key in params:
            _check_key(name, key, allowed)
        self.name, self.params, self.fn = name, params, _REGISTRY[name]
        self.facts: LossFacts = self.fn.facts
        self.__doc__ = self.fn.__doc__

    @classmethod
    def from_term(cls, term: Term) -> Loss:
        """The loss of one parsed spec term, each value converted to its parameter's declared type."""
        allowed = _allowed(term.name)
        raw = dict(term.params)
        if term.variant is not None:
            variant = _REGISTRY[term.name].facts.variant
            if variant is None:
                raise ConfigError(f"loss {term.name!r}: expected key=value, got {term.variant!r}")
            raw[variant] = term.variant
        params = {}
        for key, value in raw.items():
            _check_key(term.name, key, allowed)
            params[key] = convert(f"loss {term.name!r}", key, value, allowed[key].annotation)
        return cls(term.name, **params)

    def __call__(
        self, scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None = None, **kw: Any
    ) -> torch.Tensor:
        """``teacher_mask`` (with ``teacher_scores``): the entries the teacher scored. A distillation
        loss sees only those; any other loss ignores both, so in a sum such as ``infonce+kl`` the
        contrastive term keeps every in-batch negative while the KL term matches the teacher's."""
        teacher_mask = kw.pop("teacher_mask", None)
        if self.facts.needs_teacher:
            if teacher_mask is not None:
                mask = teacher_mask if mask is None else mask & teacher_mask
        else:
            kw.pop("teacher_scores", None)
        return self.fn(scores, labels, mask, **{**self.params, **kw})

    @property
    def spec(self) -> str:
        def text(v: Any) -> str:
            return str(v).lower() if isinstance(v, bool) else str(v)

        return self.name + (":" + ",".join(f"{k}={text(v)}" for k, v in self.params.items()) if self.params else "")

    def __repr__(self) -> str:
        return f"Loss({self.spec!r})"

    def __str__(self) -> str:
        return self.spec

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Loss) and (self.name, self.params) == (other.name, other.params)


class LossSum:
    """``sum_i w_i * loss_i``, e.g. ``infonce + 0.1 * tcm`` (a regulariser added to a ranking loss)."""

    def __init__(self, terms: list[tuple[float, Loss]]) -> None:
        self.terms = terms
        parts = [t.facts for _, t in terms]
        self.facts = LossFacts(
            needs_teacher=any(f.needs_teacher for f in parts),
            batch_level=any(f.batch_level for f in parts),
            shift_invariant=all(f.shift_invariant for f in parts),
        )
        self.name = "+".join(t.name for _, t in terms)

    def __call__(
        self, scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None = None, **kw: Any
    ) -> torch.Tensor:
        total = None
        for w, term in self.terms:
            value = w * term(scores, labels, mask, **kw)
            total = value if total is None else total + value
        return total

    @property
    def spec(self) -> str:
        return "+".join(t.spec if w == 1.0 else f"{w:g}*{t.spec}" for w, t in self.terms)

    def __repr__(self) -> str:
        return f"LossSum({self.spec!r})"

    def __str__(self) -> str:
        return self.spec

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LossSum) and self.terms == other.terms


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"name:k=v"`` -> ``("name", {"k": typed v})`` for a single-term spec."""
    loss = get(spec)
    if isinstance(loss, LossSum):
        raise ConfigError(f"loss {spec!r}: expected one loss, got a sum")
    return loss.name, loss.params


def get(spec: str | Loss | LossSum, **hyperparameters: Any) -> Loss | LossSum:
    """The loss named by ``spec`` with its hyperparameters bound, checked on a tiny batch now
    rather than at the first training step. A :class:`Loss` or :class:`LossSum` passes through."""
    if isinstance(spec, (Loss, LossSum)):
        loss = spec
    else:
        terms = parse_sum(spec, f"loss {spec!r}")
        if len(terms) == 1 and terms[0].weight == 1.0:
            loss = Loss.from_term(terms[0])
            if hyperparameters:
                loss = Loss(loss.name, **{**loss.params, **hyperparameters})
        else:
            if hyperparameters:
                raise ConfigError(f"loss {spec!r}: give a sum's hyperparameters inside the spec")
            loss = LossSum([(t.weight, Loss.from_term(Term(t.name, t.params, t.variant))) for t in terms])
    probe = {"teacher_scores": torch.zeros(2, 16)} if loss.facts.needs_teacher else {}
    try:
        loss(torch.zeros(2, 16), torch.eye(2, 16), **probe)
    except ConfigError as exc:
        raise ConfigError(f"loss {spec if isinstance(spec, str) else loss.spec!r}: {exc}") from None
    return loss

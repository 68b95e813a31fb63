"""Name -> loss resolution, in the one spec grammar of :mod:`rankwise.spec`.

A user's own loss is any function ``fn(scores, labels, mask) -> scalar tensor`` (it may also take
``weights``, ``teacher_scores``): pass it as ``TrainConfig(loss=fn)`` (``config.toml`` keeps its
importable name, ``module.function``, which loads it again), or register it by name with
:func:`register_loss` to use it in specs and sums like the built-in ones.

``get("infonce:temperature=0.05")``, ``get("lambdaloss:ndcg2pp")`` (a bare first value sets the
loss's variant parameter), ``get("mw", scope="per_query")`` or a sum ``get("infonce+0.1*tcm")``.
Every registered loss carries its facts (:class:`~rankwise.losses._common.LossFacts`) beside its
function; the registry reads them. Unknown names and parameters, and bad values, are errors
naming the parameter.
"""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

import torch

from rankwise.errors import ConfigError
from rankwise.losses import distillation, distribution, listwise, metric, pairwise, pointwise, policy, regularisers
from rankwise.losses._common import LossFacts
from rankwise.registry import Registry
from rankwise.spec import Term, convert, parse_sum

LOSSES: Registry = Registry("loss", object)  # name -> loss function (its facts beside it)
for _module in (pointwise, pairwise, listwise, metric, distribution, distillation, policy, regularisers):
    for _name, _fn in vars(_module).items():
        if callable(_fn) and isinstance(getattr(_fn, "facts", None), LossFacts) and _fn.__module__ == _module.__name__:
            LOSSES.register(_name)(_fn)

_NOT_HYPERPARAMETERS = {"weights", "teacher_scores", "reduction"}


def available() -> list[str]:
    return LOSSES.names()


def facts(name: str) -> LossFacts:
    return LOSSES.get(name).facts


NEEDS_TEACHER = frozenset(n for n in LOSSES.names() if LOSSES.get(n).facts.needs_teacher)


def hyperparameters(name: str) -> dict[str, inspect.Parameter]:
    """The keyword-only hyperparameters of a registered loss, with their annotations and defaults."""
    params = inspect.signature(LOSSES.get(name)).parameters.values()
    return {
        p.name: p for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in _NOT_HYPERPARAMETERS
    }


def _allowed(name: str) -> dict[str, inspect.Parameter]:
    if name not in LOSSES:
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
        self.name, self.params, self.fn = name, params, LOSSES.get(name)
        self.facts: LossFacts = self.fn.facts
        self.__doc__ = self.fn.__doc__

    @classmethod
    def from_term(cls, term: Term) -> Loss:
        """The loss of one parsed spec term, each value converted to its parameter's declared type."""
        allowed = _allowed(term.name)
        raw = dict(term.params)
        if term.variant is not None:
            variant = LOSSES.get(term.name).facts.variant
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


class FunctionLoss:
    """A user's function as a loss: called with the keywords it declares (``weights``,
    ``teacher_scores``); its facts are ``fn.facts`` when set (:func:`register_loss` sets them)."""

    def __init__(self, fn: Any) -> None:
        self.fn, self.params = fn, {}
        self.name = getattr(fn, "__name__", type(fn).__name__)
        self.facts: LossFacts = getattr(fn, "facts", None) or LossFacts()
        params = inspect.signature(fn).parameters.values()
        self._any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
        self._takes = {p.name for p in params}

    def __call__(
        self, scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None = None, **kw: Any
    ) -> torch.Tensor:
        teacher_mask = kw.pop("teacher_mask", None)
        if teacher_mask is not None and self.facts.needs_teacher:
            mask = teacher_mask if mask is None else mask & teacher_mask
        return self.fn(scores, labels, mask, **{k: v for k, v in kw.items() if self._any or k in self._takes})

    @property
    def spec(self) -> str:
        return f"{self.fn.__module__}.{self.fn.__qualname__}"

    def __repr__(self) -> str:
        return f"FunctionLoss({self.spec!r})"

    __str__ = spec.fget

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FunctionLoss) and self.fn is other.fn


def register_loss(name: str | None = None, **facts: Any):
    """Decorator: ``@register_loss("mine", needs_teacher=False)`` makes a loss function usable by
    name in specs (``"mine:alpha=2"``, ``"infonce+0.5*mine"``); its keyword-only arguments are its
    hyperparameters."""

    def add(fn):
        fn.facts = LossFacts(**facts)
        LOSSES.register((name or fn.__name__).lower())(fn)
        return fn

    return add


_IMPORTABLE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+$")


def _imported(spec: str) -> Any:
    """``package.module.function`` (a user's loss written to config.toml) -> the function."""
    module, _, attr = spec.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"loss {spec!r}: cannot import it ({exc})") from None


def get(spec: Any, **hyperparameters: Any) -> Loss | LossSum | FunctionLoss:
    """The loss named by ``spec`` with its hyperparameters bound, checked on a tiny batch now
    rather than at the first training step. A :class:`Loss`, :class:`LossSum` or
    :class:`FunctionLoss` passes through; a function becomes a :class:`FunctionLoss`; an importable
    ``module.function`` name loads the function."""
    if isinstance(spec, str) and _IMPORTABLE.match(spec.strip()) and spec.strip().lower() not in LOSSES:
        spec = _imported(spec.strip())
    if isinstance(spec, (Loss, LossSum, FunctionLoss)):
        loss = spec
    elif callable(spec):
        loss = FunctionLoss(spec)
    elif not isinstance(spec, str):
        raise ConfigError(f"loss: expected a spec string or a function, got {type(spec).__name__}")
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
        value = loss(torch.zeros(2, 16), torch.eye(2, 16), **probe)
    except ConfigError as exc:
        raise ConfigError(f"loss {spec if isinstance(spec, str) else loss.spec!r}: {exc}") from None
    except Exception as exc:  # a user's function: its own error, on the first call
        raise ConfigError(f"loss {loss.spec!r} fails on a (2, 16) batch: {type(exc).__name__}: {exc}") from None
    if not (isinstance(value, torch.Tensor) and value.ndim == 0):
        raise ConfigError(f"loss {loss.spec!r}: expected a scalar tensor, got {type(value).__name__}")
    return loss

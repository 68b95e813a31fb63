"""Hyperparameter choice on validation that never stops at the edge of what it tried.

A grid's best point often sits on the grid's edge, where a value beyond it might be better. Here
each parameter has a *ladder* (its candidate values in order); the search scores a starting grid
drawn from the ladders, then keeps trying the best point's untried neighbours (one ladder step up
or down along one parameter) until every neighbour of the best point has been scored. The chosen
point is then better than all its tried neighbours; it can sit at an edge only where its ladder
ends, which the result says.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Tuned:
    """The chosen ``params``, its ``score``, every point ``tried`` (in order, with its score) and the
    parameters whose chosen value is the last or first rung of its ladder (``at_ladder_end``)."""

    params: dict[str, Any]
    score: float
    tried: list[tuple[dict[str, Any], float]] = field(default_factory=list)
    at_ladder_end: list[str] = field(default_factory=list)


def _neighbours(point: dict[str, Any], ladders: dict[str, Sequence[Any]]) -> list[dict[str, Any]]:
    out = []
    for name, ladder in ladders.items():
        i = list(ladder).index(point[name])
        out += [point | {name: ladder[j]} for j in (i - 1, i + 1) if 0 <= j < len(ladder)]
    return out


def widen(
    ladders: dict[str, Sequence[Any]],
    start: dict[str, Sequence[Any]],
    score: Callable[[dict[str, Any]], float],
    max_points: int = 64,
) -> Tuned:
    """Score the grid ``start`` (each value on its ladder), then the best point's untried
    neighbours until it has none (at most ``max_points`` scored). Ties keep the earlier point."""
    for name, values in start.items():
        missing = [v for v in values if v not in ladders[name]]
        if missing:
            raise ValueError(f"start value {missing[0]!r} of {name} is not on its ladder {list(ladders[name])}")
    tried: list[tuple[dict[str, Any], float]] = []
    seen: set[tuple] = set()

    def visit(point: dict[str, Any]) -> None:
        key = tuple(point[n] for n in ladders)
        if key not in seen and len(tried) < max_points:
            seen.add(key)
            tried.append((point, float(score(point))))

    for values in itertools.product(*(start[n] for n in ladders)):
        visit(dict(zip(ladders, values)))
    while True:
        best = max(tried, key=lambda t: t[1])[0]  # max keeps the first of equal scores
        todo = [p for p in _neighbours(best, ladders) if tuple(p[n] for n in ladders) not in seen]
        if not todo or len(tried) >= max_points:
            break
        for point in todo:
            visit(point)
    params, value = max(tried, key=lambda t: t[1])
    ends = [n for n, ladder in ladders.items() if params[n] in (ladder[0], ladder[-1]) and len(ladder) > 1]
    return Tuned(params, value, tried, ends)

"""A forgetting guard: WiSE-FT weight interpolation (Wortsman et al., "Robust fine-tuning of
zero-shot models", CVPR 2022).

    theta(alpha) = (1 - alpha) * theta_start + alpha * theta_tuned

Fine-tuning on a narrow domain can cost what the starting model knew elsewhere; the interpolated
model often keeps most of the in-domain gain and much of the zero-shot quality. ``alpha`` is chosen
on a dev split (never on test); an out-of-domain check set, when given, is scored at every
``alpha`` so the trade is visible. Works for any family whose two models share parameter names
and shapes (the same architecture before and after fine-tuning).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from rankwise.errors import RankwiseError

ALPHAS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0)  # the fine-tuned model first: it wins ties


def interpolate_weights(start: Any, tuned: Any, alpha: float) -> Any:
    """A copy of ``tuned`` whose floating-point parameters and buffers are
    ``(1 - alpha) * start + alpha * tuned``; integer buffers (position ids) come from ``tuned``."""
    from rankwise.families import family_of

    if not 0.0 <= alpha <= 1.0:
        raise RankwiseError(f"alpha {alpha}: expected a weight in [0, 1]")
    a, b = family_of(start), family_of(tuned)
    if a.name != b.name:
        raise RankwiseError(f"cannot interpolate a {a.name} model with a {b.name} model")
    sa, sb = a.module.state_dict(), b.module.state_dict()
    if sa.keys() != sb.keys():
        differ = sorted(set(sa) ^ set(sb))[0]
        raise RankwiseError(f"the two models differ in their parameters ({differ!r} is in one only)")
    mixed = {}
    for k, v in sb.items():
        if v.shape != sa[k].shape:
            raise RankwiseError(f"parameter {k!r} has shape {tuple(sa[k].shape)} and {tuple(v.shape)}")
        mixed[k] = torch.lerp(sa[k].to(v.dtype), v, alpha) if v.is_floating_point() else v.clone()
    out = copy.deepcopy(tuned)
    family_of(out).module.load_state_dict(mixed)
    return out


@dataclass
class WiseFT:
    """The chosen ``alpha`` and its model, and each alpha's dev value (and check-set value)."""

    alpha: float
    model: Any
    metric: str
    dev: dict[float, float]
    check: dict[float, float] = field(default_factory=dict)  # out-of-domain set, reported only


def wise_ft(
    start: Any,
    tuned: Any,
    dev,
    *,
    alphas: Sequence[float] = ALPHAS,
    metric: str = "ndcg@10",
    k: int = 100,
    check=None,
) -> WiseFT:
    """Interpolate ``start`` and ``tuned`` at each of ``alphas``, score each on ``dev`` (a split with
    qrels) and keep the best (the first of equals in ``alphas`` order). ``check``: another split (e.g.
    trec-dl-5k) scored at every alpha for the report, never used to choose."""
    from rankwise.families import family_of

    scores: dict[float, float] = {}
    checks: dict[float, float] = {}
    best: tuple[float, float, Any] | None = None
    for alpha in alphas:
        model = interpolate_weights(start, tuned, alpha)
        value = family_of(model).evaluate(dev, k, metrics=[metric]).metrics[metric]
        scores[alpha] = value
        if check is not None:
            checks[alpha] = family_of(model).evaluate(check, k, metrics=[metric]).metrics[metric]
        if best is None or value > best[1]:
            best = (alpha, value, model)
    assert best is not None, "alphas is empty"
    return WiseFT(best[0], best[2], metric, scores, checks)

"""Ranking losses on one shape: ``loss(scores, labels, mask=None, *, weights=None, reduction="mean", **hp)``.

``scores``, ``labels`` (graded, >= 0) and ``mask`` are ``[n_lists, list_size]``. The registry
resolves ``"name:key=value,..."`` specs from the CLI or a config.
"""

from rankwise.losses.listwise import infonce
from rankwise.losses.registry import available, get, parse_spec

__all__ = ["infonce", "available", "get", "parse_spec"]

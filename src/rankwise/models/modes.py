"""The one train/eval switch: scoring or encoding for use runs in eval mode without gradients,
and leaves the module in the mode it found it in."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def evaluating(module: nn.Module, *, grad: bool = False) -> Iterator[None]:
    """``module.eval()`` (and ``torch.inference_mode`` unless ``grad``) for the block; the
    module's mode before it afterwards, even when the block fails.

    >>> m = nn.Dropout(0.5).train()
    >>> with evaluating(m):
    ...     m.training
    False
    >>> m.training
    True
    """
    was = module.training
    module.eval()
    try:
        if grad:
            yield
        else:
            with torch.inference_mode():
                yield
    finally:
        module.train(was)

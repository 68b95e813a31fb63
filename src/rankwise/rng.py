"""The one helper for torch's random state (CPU and, when in use, CUDA): checkpoints save it and
gradient caching replays a forward pass's dropout masks with it."""

from __future__ import annotations

from typing import Any

import torch


def rng_state() -> dict[str, Any]:
    """torch's generators now: ``{"torch": ..., "cuda": ...}`` (``cuda`` only once CUDA is in use)."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Put back what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None:
        torch.cuda.set_rng_state_all(state["cuda"])

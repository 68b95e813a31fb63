"""Devices by name: ``cpu``, ``cuda``, ``cuda:1``, ``mps``; ``None`` picks the best available."""

from __future__ import annotations

import torch

from rankwise.errors import ConfigError


def best_device() -> str:
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def resolve_device(name: str | torch.device | None) -> torch.device:
    """The device ``name`` (checked to exist), or the best available one."""
    if name is None or str(name) == "auto":
        return torch.device(best_device())
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"device {name!r}: expected cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r}: no CUDA device is available here")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"device {name!r}: MPS is not available here")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device {name!r}: expected cpu, cuda, cuda:N or mps")
    return device

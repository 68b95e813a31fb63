"""Provenance written into every benchmark result: the commit, the versions of the libraries it
ran (torch, transformers, sentence-transformers and each peer), and the machine."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
from pathlib import Path

OUTPUTS = ("benchmarks/results/", "benchmarks/runs/")


def commit() -> str | None:
    """The checkout's commit (with ``+dirty`` when the tree has changes), so a result names its code.

    ``$RANKWISE_COMMIT`` overrides it for a copy of the tree whose ``.git`` is not the tree's (the lent
    GPU machine's copy carries the session's starting ``.git`` beside later files).
    """
    repo = Path(__file__).resolve().parents[1]
    if os.environ.get("RANKWISE_COMMIT"):
        return os.environ["RANKWISE_COMMIT"] + " (named by $RANKWISE_COMMIT)"
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    # a benchmark's own outputs (results, kept runs) do not make the code it ran dirty
    changed = [line for line in dirty.stdout.splitlines() if not line[3:].startswith(OUTPUTS)]
    return sha.stdout.strip() + ("+dirty" if changed else "")


def machine() -> dict:
    import numpy
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit(),
        "load_average_1_5_15min": list(os.getloadavg()),  # other work sharing the cores inflates timings
    }


# distribution names of the libraries a result's figures depend on; peers are added by name
CORE = ("torch", "transformers", "sentence-transformers", "numpy")


def versions(peers: tuple[str, ...] = ()) -> dict[str, str | None]:
    """Installed versions of the core libraries and ``peers`` (None: not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in (*CORE, *peers):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def write_result(path: Path, result: dict, peers: tuple[str, ...] = ()) -> None:
    """``result`` with ``commit`` and ``versions`` at its top, written atomically."""
    from rankwise.io import write_json

    stale = ("commit", "versions", "provenance_note")  # a result read back from an earlier run carries these
    write_json(
        path, {"commit": commit(), "versions": versions(peers), **{k: v for k, v in result.items() if k not in stale}}
    )

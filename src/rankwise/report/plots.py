"""PNG figures for run reports (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rankwise.io import atomic_path  # noqa: E402


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def training_loss(steps: Sequence[int], losses: Sequence[float], path: str | Path, *, title: str = "Training loss") -> Path:
    """Raw per-step loss and its moving average (window ~5 % of the run)."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    s, v = np.asarray(steps), np.asarray(losses, dtype=float)
    ax.plot(s, v, color="#9ecae1", lw=1, label="per step")
    w = max(1, len(v) // 20)
    if len(v) >= 2 * w and w > 1:
        smooth = np.convolve(v, np.ones(w) / w, mode="valid")
        ax.plot(s[w - 1 :], smooth, color="#08519c", lw=2, label=f"moving mean ({w} steps)")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, Path(path))


def per_query_delta(before: Mapping[str, float], after: Mapping[str, float], path: str | Path, *, metric: str = "nDCG@10") -> Path:
    """Per-query change, sorted: bars above zero are queries the run improved."""
    qids = [q for q in before if q in after]
    delta = np.sort(np.array([after[q] - before[q] for q in qids]))
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    colors = np.where(delta > 0, "#31a354", np.where(delta < 0, "#de2d26", "#bdbdbd"))
    ax.bar(np.arange(len(delta)), delta, width=1.0, color=colors)
    ax.axhline(0, color="black", lw=0.8)
    up, down = int((delta > 0).sum()), int((delta < 0).sum())
    ax.set_title(f"Per-query {metric} change: {up} up, {down} down, {len(delta) - up - down} same")
    ax.set_xlabel("queries (sorted by change)")
    ax.set_ylabel(f"Δ {metric}")
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, Path(path))

"""PNG figures for run reports (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
from matplotlib.ticker import MaxNLocator

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rankwise.io import atomic_path  # noqa: E402


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def training_loss(
    steps: Sequence[int], losses: Sequence[float], path: str | Path, *, title: str = "Training loss"
) -> Path:
    """Raw per-step loss and its moving average (window ~5 % of the run)."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    s, v = np.asarray(steps), np.asarray(losses, dtype=float)
    ax.plot(s, v, color="#9ecae1", lw=1, label="per step")
    w = max(1, len(v) // 20)
    if len(v) >= 2 * w and w > 1:
        smooth = np.convolve(v, np.ones(w) / w, mode="valid")
        ax.plot(s[w - 1 :], smooth, color="#08519c", lw=2, label=f"moving mean ({w} steps)")
    ax.set_xlabel("step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, Path(path))


def per_query_delta(
    before: Mapping[str, float], after: Mapping[str, float], path: str | Path, *, metric: str = "nDCG@10"
) -> Path:
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


_COLORS = ["#08519c", "#de2d26", "#31a354", "#756bb1", "#e6550d", "#636363"]


def roc_curves(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray, float]],
    path: str | Path,
    *,
    title: str = "ROC, all queries pooled",
) -> Path:
    """One ROC curve per run: ``{name: (fpr, tpr, auc)}``; log-scaled FPR shows the low-FAR end
    where a served threshold lives."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, log in zip(axes, (False, True)):
        for i, (name, (fpr, tpr, area)) in enumerate(curves.items()):
            ax.step(fpr, tpr, where="post", color=_COLORS[i % len(_COLORS)], lw=1.6, label=f"{name} (AUC {area:.4f})")
        ax.plot([1e-4, 1], [1e-4, 1], color="#bbbbbb", lw=0.8, ls="--")
        ax.set_xlabel("false positive rate" + (" (log)" if log else ""))
        ax.set_ylabel("true positive rate")
        if log:
            ax.set_xscale("log")
            ax.set_xlim(1e-4, 1)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle(title)
    return _save(fig, Path(path))


def score_histograms(samples: Mapping[str, tuple[np.ndarray, np.ndarray]], path: str | Path) -> Path:
    """Positive vs negative score densities, one panel per run: how far apart, and where one
    global threshold would have to sit."""
    n = len(samples)
    fig, axes = plt.subplots(1, n, figsize=(5 * n, 3.6), squeeze=False)
    for ax, (name, (pos, neg)) in zip(axes[0], samples.items()):
        allv = np.concatenate([pos, neg])
        bins = np.linspace(allv.min(), allv.max(), 60) if len(allv) and allv.max() > allv.min() else 10
        ax.hist(neg, bins=bins, density=True, alpha=0.55, color="#de2d26", label=f"negatives ({len(neg)})")
        ax.hist(pos, bins=bins, density=True, alpha=0.55, color="#31a354", label=f"positives ({len(pos)})")
        ax.set_title(name)
        ax.set_xlabel("score")
        ax.set_ylabel("density")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return _save(fig, Path(path))


def metric_over_steps(
    steps: Sequence[int],
    series: Mapping[str, Sequence[float]],
    path: str | Path,
    *,
    title: str = "Evaluation during training",
) -> Path:
    """Each metric against the training step (step 0 = before training)."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for i, (name, values) in enumerate(series.items()):
        ax.plot(steps, values, marker="o", ms=3, color=_COLORS[i % len(_COLORS)], label=name)
    ax.set_xlabel("step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
    ax.set_ylabel("value")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, Path(path))


def diagnostics_over_steps(series: Mapping[str, tuple[Sequence[int], Sequence[float]]], path: str | Path) -> Path:
    """Training diagnostics, one small panel each (their scales differ)."""
    n = len(series)
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.6 * rows), squeeze=False)
    for i, (name, (steps, values)) in enumerate(series.items()):
        ax = axes[i // cols][i % cols]
        ax.plot(steps, values, marker="o", ms=2, color=_COLORS[i % len(_COLORS)])
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))  # few ticks: long step numbers never touch
        ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for j in range(n, rows * cols):
        axes[j // cols][j % cols].axis("off")
    fig.tight_layout()  # panels' titles and tick labels apart
    return _save(fig, Path(path))


def frontier(
    cells: Mapping[int, Mapping[str, Mapping[str, float]]], path: str | Path, *, metric: str = "ndcg@10"
) -> Path:
    """Quality against index size: one line per precision through its dimensions (log-scale bytes)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    precisions = list(dict.fromkeys(p for row in cells.values() for p in row))
    for prec in precisions:
        pts = sorted((c[prec]["index_bytes"], c[prec][metric], d) for d, c in cells.items() if prec in c)
        ax.plot([b for b, _, _ in pts], [v for _, v, _ in pts], marker="o", label=prec)
        for b, v, d in pts:
            ax.annotate(str(d), (b, v), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("index bytes")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} against index size (labels: dimensions)")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, Path(path))

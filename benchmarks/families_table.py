"""benchmarks/README's table of ``results/families.json``: rankwise against sentence-transformers per
family, with the seed-aware difference (two-level bootstrap over queries and seeds, Holm within each
dataset's table).

Kept apart from ``families.py`` on purpose: the study's kept runs key on that script's text, so a
change to how the table is drawn must not make them stale.
"""

from __future__ import annotations

import numpy as np

from rankwise.metrics.significance import holm, two_level_bootstrap

NAMES = {"inference-free": "inference-free", "sparse": "SPLADE", "multi-vector": "multi-vector (ColBERT)"}


def per_query(side: dict) -> np.ndarray:
    """``[seeds, queries]`` nDCG@10, queries in one order for every seed."""
    runs = [r["ndcg@10"] for r in side["per_query"]]
    qids = sorted(runs[0])
    return np.array([[run[q] for q in qids] for run in runs])


def differences(cells: dict) -> dict[str, tuple[float, tuple[float, float], float, float]]:
    """Per family: (rankwise - peer, its 95% interval, p, Holm-adjusted p), in nDCG@10 points."""
    raw = {}
    for family, sides in cells.items():
        if family == "bm25":
            continue
        diff, (lo, hi), p = two_level_bootstrap(per_query(sides["rankwise"]), per_query(sides["peer"]))
        raw[family] = (100 * diff, (100 * lo, 100 * hi), p)
    adjusted = holm([p for *_, p in raw.values()])
    return {f: (*v, adj) for (f, v), adj in zip(raw.items(), adjusted)}


def _seeds(side: dict) -> str:
    return ", ".join(f"{s['ndcg@10']:.4f}" for s in side["seeds"])


def markdown(result: dict, dataset: str) -> str:
    """The table of one dataset: nDCG@10 per side (per seed), the difference, examples/s and the
    training process's peak memory (``benchmarks._memory``: its own ``VmHWM``)."""
    cells = result["datasets"][dataset]
    lines = [
        "| family | rankwise (seeds) | sentence-transformers (seeds) | difference, points (95% interval; p, Holm) "
        "| examples/s | peak memory MB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for family, (diff, (lo, hi), p, p_holm) in differences(cells).items():
        a, b = cells[family]["rankwise"], cells[family]["peer"]
        speed = a["examples_per_s"] / b["examples_per_s"]
        lines.append(
            f"| {NAMES[family]} | {a['ndcg@10']:.4f} ({_seeds(a)}) | {b['ndcg@10']:.4f} ({_seeds(b)}) "
            f"| {diff:+.2f} ({lo:+.2f}, {hi:+.2f}; p {p:.2f}, {p_holm:.2f}) "
            f"| {a['examples_per_s']:.2f} vs {b['examples_per_s']:.2f} ({speed:.2f}x) "
            f"| {a['peak_rss_mb']:,.0f} vs {b['peak_rss_mb']:,.0f} |"
        )
    lines.append(f"| BM25 (bm25s, words) | {cells['bm25']['ndcg@10']:.4f} | | | | |")
    return "\n".join(lines)


if __name__ == "__main__":
    import json

    from benchmarks.families import OUT

    result = json.loads(OUT.read_text())
    for name in result["datasets"]:
        print(f"{name}\n{markdown(result, name)}\n")

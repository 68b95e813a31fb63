"""benchmarks/README's table of ``results/inference_free_bm25.json``: the candidates chosen on dev
(seed 42), the chosen setting's seeds on test, BM25, and the seed-aware difference.

Kept apart from ``inference_free_bm25.py`` on purpose: the study's kept runs key on that script's
text, so a change to how the table is drawn must not make them stale.
"""

from __future__ import annotations


def _name(candidate: dict) -> str:
    teacher = ", ensemble teacher" if candidate["teacher"] else ""
    return f"{candidate['steps']} steps{teacher}"


def markdown(result: dict) -> str:
    """One row a candidate (dev and test nDCG@10 at seed 42, the chosen one in bold), the chosen
    setting's three seeds, BM25, and the chosen setting minus BM25 on test in points."""
    chosen = result["chosen"]
    lines = [
        "| SciFact | dev nDCG@10 (seed 42, chooses) | test nDCG@10 | test Recall@100 |",
        "|---|---:|---:|---:|",
    ]
    for c in result["candidates"]:
        mark = "**" if all(c[k] == chosen[k] for k in chosen) else ""
        lines.append(
            f"| {mark}{_name(c)}{mark} | {c['dev']['ndcg@10']:.4f} | {c['test']['ndcg@10']:.4f} "
            f"| {c['test']['recall@100']:.4f} |"
        )
    test = result["test"]
    seeds = ", ".join(f"{s:.4f}" for s in test["seeds"])
    names = "/".join(str(s) for s in result["settings"]["seeds"])
    dev = sum(r["dev"]["metrics"]["ndcg@10"] for r in result["runs"]) / len(result["runs"])
    lines.append(
        f"| chosen, seeds {names} (mean) | {dev:.4f} | **{test['ndcg@10']:.4f}** ({seeds}) | {test['recall@100']:.4f} |"
    )
    bm25 = {s: result["bm25"][s]["metrics"] for s in ("dev", "test")}
    lines.append(
        f"| BM25 (bm25s, words) | {bm25['dev']['ndcg@10']:.4f} | {bm25['test']['ndcg@10']:.4f} "
        f"| {bm25['test']['recall@100']:.4f} |"
    )
    return "\n".join(lines)


def verdict_line(result: dict) -> str:
    """The chosen setting minus BM25 on test, in nDCG@10 points, as the README states it."""
    v = result["test"]["minus_bm25"]
    lo, hi = v["ci95"]
    return (
        f"{100 * v['difference']:+.2f} nDCG@10 points on test (95% interval {100 * lo:+.2f} to "
        f"{100 * hi:+.2f}; p {v['p']:.3f}, two-level bootstrap over queries and seeds)"
    )


if __name__ == "__main__":
    import json

    from benchmarks.inference_free_bm25 import OUT

    result = json.loads(OUT.read_text())
    print(markdown(result), "\n", verdict_line(result), sep="\n")

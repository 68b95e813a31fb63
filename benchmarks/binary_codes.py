"""Binary codes with and without iterative quantisation (``binary`` against ``binary-itq``).

The packaged all-MiniLM-L6-v2, zero-shot, as loaded and rotated onto the principal axes of the
embeddings of its train split's corpus (``BiEncoder.rotate_to_principal_axes``; the frontier study
rotates onto the train positives, a subset of it, with ``rotate_onto_training_documents``): nDCG@10 of exact search over fp32, sign-bit and ITQ sign-bit codes at 128 and
384 dimensions (``rankwise.metrics.frontier``), on queries no test table reports: stdlib-code's dev
split and SciFact's train queries. No training, no seeds: it asks only whether ITQ gives back what
the rotation takes from sign bits (benchmarks/README.md, "The cost-quality frontier").

    python benchmarks/binary_codes.py   # about 15 minutes on 2 CPU cores
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: benchmarks is a package
from benchmarks._machine import machine, write_result  # noqa: E402
from benchmarks.settings import RESULTS, SCIFACT  # noqa: E402

OUT = RESULTS / "binary_codes.json"
PEERS = ("faiss-cpu",)
DIMS, PRECISIONS = [128, 384], ["fp32", "binary", "binary-itq"]


def cells(rotated: bool, root: Path, split: str) -> dict:
    from rankwise.data import load_beir
    from rankwise.index.retrieve import corpus_texts
    from rankwise.metrics.frontier import frontier
    from rankwise.models import BiEncoder

    model = BiEncoder.load(None)
    if rotated:
        model.rotate_to_principal_axes(corpus_texts(load_beir(root, "train").own_split())[1])
    f = frontier(model, load_beir(root, split).own_split(), DIMS, PRECISIONS)
    return {f"{d}/{p}": c["ndcg@10"] for d, row in f.cells.items() for p, c in row.items()}


def markdown(result: dict) -> str:
    """benchmarks/README's table: binary / binary-itq nDCG@10 per arm and size."""
    sets = result["datasets"]
    lines = [
        "| | stdlib-code dev, binary / binary-itq | SciFact train queries, binary / binary-itq |",
        "|---|---:|---:|",
    ]
    for arm in ("as-loaded", "rotated"):
        for d in sorted(result["dims"], reverse=True):
            pair = [f"{s[arm][f'{d}/binary']:.4f} / {s[arm][f'{d}/binary-itq']:.4f}" for s in sets.values()]
            lines.append(f"| {arm.replace('-', ' ')}, {d} dimensions | {pair[0]} | {pair[1]} |")
    return "\n".join(lines)


def main() -> None:
    from rankwise.data.stdlib_code import ensure_built

    sets = {"stdlib-code": (ensure_built(), "dev"), "scifact": (SCIFACT, "train")}
    out = {}
    for name, (root, split) in sets.items():
        out[name] = {"split": split}
        for rotated in (False, True):
            out[name]["rotated" if rotated else "as-loaded"] = cells(rotated, root, split)
            print(name, rotated, out[name], flush=True)
    write_result(OUT, {"machine": machine(), "dims": DIMS, "precisions": PRECISIONS, "datasets": out}, PEERS)
    print(markdown(json.loads(OUT.read_text())))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()

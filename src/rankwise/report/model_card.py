"""A model card (``README.md``) written into every model folder a training run saves.

Sentence-transformers' card format: YAML metadata (``library_name``, ``base_model``, ``tags``,
``datasets``, ``pipeline_tag``), then Markdown. It holds what a reader needs to trust and rerun
the model: the base model, the data (names and sha256 of their files), the full training
config, steps and time, the examples' negatives, and the metrics with 95 % bootstrap intervals
and a paired test against the starting model, and the command that reproduces it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rankwise.io import write_text

PIPELINE_TAGS = {"bi-encoder": "sentence-similarity", "cross-encoder": "text-ranking"}


def file_digests(paths: Sequence[Path]) -> dict[str, str]:
    """sha256 of each file (of each data file in a folder: corpus, queries, qrels), by name."""
    out: dict[str, str] = {}
    for p in map(Path, paths):
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and f.suffix in {".jsonl", ".tsv", ".json", ".txt"}:
                    out[f"{p.name}/{f.relative_to(p)}"] = hashlib.sha256(f.read_bytes()).hexdigest()
        elif p.is_file():
            out[p.name] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _yaml(meta: Mapping[str, Any]) -> str:
    lines = ["---"]
    for k, v in meta.items():
        if isinstance(v, list):
            lines.append(f"{k}:")
            lines += [f"- {json.dumps(x)}" for x in v]
        elif v is not None:
            lines.append(f"{k}: {json.dumps(v)}")
    return "\n".join([*lines, "---", ""])


def metrics_table(comparison) -> str:
    """The metrics of the starting and the trained model: mean [95 % CI], and the trained model's
    difference with its paired p-value (from :func:`rankwise.metrics.compare.compare_runs`)."""
    lines = ["| model | " + " | ".join(comparison.metrics) + " |", "|---|" + "---:|" * len(comparison.metrics)]
    for run in comparison.cells:
        cells = [" ".join(filter(None, comparison.cell(run, m))) for m in comparison.metrics]
        lines.append(f"| {comparison.label(run)} | " + " | ".join(cells) + " |")
    return "\n".join([*lines, "", comparison.caption()])


def write_model_card(
    model_dir: Path,
    *,
    family: str,
    base_model: str,
    data: Mapping[str, Any],
    config: Mapping[str, Any],
    training: Mapping[str, Any],
    comparison=None,
    command: str | None = None,
) -> Path:
    """``model_dir/README.md`` (written atomically). ``data``: {"names": [...], "sha256": {...}};
    ``training``: steps, seconds, examples, negatives statistics; ``comparison``: a
    :class:`~rankwise.metrics.compare.RunComparison` of the starting (baseline) and trained runs."""
    meta = {
        "library_name": "sentence-transformers",
        "base_model": base_model,
        "pipeline_tag": PIPELINE_TAGS.get(family),
        "tags": ["rankwise", family, "sentence-transformers"],
        "datasets": list(data.get("names", [])),
    }
    parts = [
        _yaml(meta),
        f"# {family} fine-tuned from {base_model} with rankwise",
        "",
        "## Evaluation",
        "",
        metrics_table(comparison) if comparison is not None else "No evaluation split was given.",
        "",
        "## Training",
        "",
        *(f"- {k}: {v}" for k, v in training.items()),
        "",
        "## Data",
        "",
        *(f"- {name}" for name in data.get("names", [])),
        "",
        "| file | sha256 |",
        "|---|---|",
        *(f"| {name} | `{digest}` |" for name, digest in data.get("sha256", {}).items()),
        "",
        "## Config",
        "",
        "```json",
        json.dumps(dict(config), indent=2, sort_keys=True, default=str),
        "```",
        "",
    ]
    if command:
        parts += ["## Reproduce", "", "```bash", command, "```", ""]
    path = Path(model_dir) / "README.md"
    write_text(path, "\n".join(parts))
    return path

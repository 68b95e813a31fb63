"""``rankwise mine``: hard negatives (BM25 or dense, with margin guards and a teacher) for a
training split; resumable, written atomically."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rankwise.errors import ConfigError
from rankwise.negatives.mining import MineOptions, MineStats
from rankwise.progress import console


@dataclass
class MineJob:
    out: Path
    stats: MineStats


def mine(
    data: str | Path,
    out: str | Path,
    options: MineOptions,
    *,
    split: str = "train",
    lenient: bool = False,
    overwrite: bool = False,
    ray: str | None = None,
    workers: int = 2,
) -> MineJob:
    """Mine ``options`` for ``data``'s ``split`` into ``out`` (JSONL, id form). An existing ``out``
    is refused unless ``overwrite`` (teacher-scored files cost real time)."""
    from rankwise.data import load_beir
    from rankwise.io import check_writable
    from rankwise.jobs.eval import check_limits
    from rankwise.negatives.mining import mine as mine_file

    check_limits(max_length=options.max_length)
    out = Path(out)
    if out.is_dir():
        raise ConfigError(f"out={out}: is a folder; give the training JSONL file to write", param="out")
    if out.exists() and not overwrite:
        raise ConfigError(f"out={out}: exists; overwrite=True replaces it", param="out")
    if options.method == "bm25" and options.model is not None:
        raise ConfigError("model= is for dense mining: BM25 mines without a model")
    check_writable(out, is_dir=False)
    dataset = load_beir(data, split).own_split()
    embeddings = None
    if ray is not None and options.method == "dense":
        from rankwise.index.distributed_encode import corpus_embeddings

        embeddings = corpus_embeddings(
            dataset, options.model, address=ray, workers=workers, max_length=options.max_length, log=console.print
        )
    return MineJob(out, mine_file(dataset, options, out, lenient=lenient, embeddings=embeddings))

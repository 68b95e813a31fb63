"""``rankwise ar2``: co-train a retriever and a ranker (AR2), resumable round by round."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rankwise.progress import console
from rankwise.training.recipes import AR2Schedule


@dataclass
class AR2Job:
    retriever: Path
    ranker: Path
    schedule: AR2Schedule


def ar2(
    data: str | Path,
    retriever: str | Path,
    ranker: str | Path,
    out: str | Path,
    schedule: AR2Schedule | None = None,
    *,
    split: str = "train",
    log: Callable[[str], None] = console.print,
) -> AR2Job:
    """The retriever's candidates teach the ranker, the ranker's distribution the retriever."""
    from rankwise.data import load_beir
    from rankwise.training.recipes import ar2 as co_train

    schedule = schedule or AR2Schedule()
    final = co_train(retriever, ranker, load_beir(data, split).own_split(), out, schedule, log=log)
    return AR2Job(Path(final), Path(out) / "ranker", schedule)

"""Named recipes: training procedures built from the library's parts.

- :data:`RECIPES`: single-run recipes as :class:`~rankwise.training.TrainConfig` options
  (``TrainConfig.from_recipe`` / ``rankwise train --recipe``).
- :func:`ar2`: the AR2 alternating schedule of a retriever and a ranker, over several runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rankwise.data.beir import Dataset
from rankwise.errors import ConfigError
from rankwise.io import write_json


@dataclass(frozen=True)
class Recipe:
    name: str
    summary: str
    options: dict[str, Any]  # TrainConfig options; "{teacher}" is replaced by the teacher's folder
    needs_teacher: bool = False


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe(
            "tas-balanced",
            "TAS-Balanced (Hofstätter et al., SIGIR 2021): topic-clustered batches (k-means over the "
            "training queries' embeddings), teacher-scored BM25 negatives drawn from balanced margin "
            "bins, and the dual-teacher loss: pairwise Margin-MSE plus 0.75 x listwise KL to the "
            "teacher over the query's teacher-scored candidates",
            {
                "batching": "tas:clusters=64",
                "negatives": "bm25:window=1-30,k=7,teacher={teacher},teacher_margin=0.0",
                "loss": "margin_mse+0.75*kl",
            },
            needs_teacher=True,
        ),
        Recipe(
            "margin-mse",
            "Margin-MSE cross-architecture distillation (Hofstätter et al., 2020): BM25 negatives "
            "scored by the teacher, the student matches the teacher's (positive - negative) margins",
            {"negatives": "bm25:window=1-30,k=7,teacher={teacher}", "loss": "margin_mse"},
            needs_teacher=True,
        ),
        Recipe(
            "distil-kl",
            "InfoNCE over the batch plus listwise KL to the teacher's distribution over each query's "
            "teacher-scored candidates (RocketQAv2-style listwise distillation)",
            {
                "negatives": "bm25:window=1-30,k=7,teacher={teacher}",
                "loss": "infonce:temperature=0.05+kl:temperature=0.05",
            },
            needs_teacher=True,
        ),
    )
}


def recipe_options(name: str, teacher: str | Path | None = None) -> dict[str, Any]:
    """The TrainConfig options of recipe ``name``, with ``teacher`` filled in."""
    if name not in RECIPES:
        raise ConfigError(f"recipe {name!r}: expected one of {', '.join(RECIPES)}")
    recipe = RECIPES[name]
    if recipe.needs_teacher and teacher is None:
        raise ConfigError(f"recipe {name!r} distils a teacher: give its folder (teacher=, --teacher)")
    if teacher is not None and any(c in str(teacher) for c in ",+"):
        raise ConfigError(f"teacher folder {teacher}: a path with ',' or '+' cannot go into an option string")
    return {k: v.replace("{teacher}", str(teacher)) if isinstance(v, str) else v for k, v in recipe.options.items()}


# ------------------------------------------------------------------------------ AR2
@dataclass(frozen=True)
class AR2Schedule:
    """The AR2 co-training schedule (Zhang et al., ICLR 2022; ``microsoft/AR2``), sized for a CPU.

    Each round: (1) the current retriever mines each training query's top ``depth`` and keeps
    ``candidates`` hard negatives; (2) the ranker trains ``ranker_steps`` on lists of the positive
    and those candidates (softmax cross-entropy, the positive against the retrieved ones); (3) the
    ranker scores every (query, candidate) pair; (4) the retriever trains ``retriever_steps`` with
    AR2's loss (:func:`rankwise.losses.ar2`: ``adv_lambda`` x the adversarial reward term +
    distillation from the ranker's distribution over the candidates). The authors alternate 500
    ranker and 1,500 retriever steps per 2,000-step iteration and refresh the candidates after each.
    """

    rounds: int = 2
    depth: int = 30
    candidates: int = 7
    ranker_steps: int = 40
    ranker_batch: int = 8
    ranker_lr: float = 1e-5
    retriever_steps: int = 45
    retriever_batch: int = 16
    retriever_lr: float = 2e-5
    adv_lambda: float = 0.5
    query_max_length: int = 32
    doc_max_length: int = 128
    queries: int | None = None  # co-train on this many training queries (seeded sample; None: all)
    seed: int = 42

    def describe(self) -> str:
        return (
            f"AR2: {self.rounds} rounds of [retriever mines top {self.depth}, keeps {self.candidates} candidates -> "
            f"ranker {self.ranker_steps} steps (batch {self.ranker_batch}, lr {self.ranker_lr:g}) -> ranker scores "
            f"the candidates -> retriever {self.retriever_steps} steps with ar2:adv_lambda={self.adv_lambda} "
            f"(batch {self.retriever_batch}, lr {self.retriever_lr:g})]"
            + (f" on {self.queries} sampled training queries" if self.queries else "")
        )


def ar2(
    retriever: str | Path,
    ranker: str | Path,
    dataset: Dataset,
    out: str | Path,
    schedule: AR2Schedule | None = None,
    *,
    log: Callable[[str], None] = print,
) -> Path:
    """Co-train ``retriever`` (a dual-encoder folder) and ``ranker`` (a cross-encoder folder) on
    ``dataset``'s training qrels with the AR2 schedule; returns the final retriever's folder
    (``out/retriever``; the ranker: ``out/ranker``). Resumable: each finished phase leaves its
    model in ``out/round-N/``, each unfinished training run its checkpoints; a re-run with the
    same schedule skips what is done and continues the rest. ``out/schedule.json`` records the
    schedule and the phases done."""
    schedule = schedule or AR2Schedule()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / "schedule.json"
    state = json.loads(state_path.read_text()) if state_path.is_file() else {"schedule": asdict(schedule), "done": []}
    if state["schedule"] != asdict(schedule):
        raise ConfigError(f"{state_path}: made with another schedule ({state['schedule']}); use a new folder")
    log(schedule.describe())
    dataset = _ar2_queries(dataset, schedule)
    if state["done"]:
        log(f"resuming after: {', '.join(state['done'])}")
    current_retriever, current_ranker = Path(retriever), Path(ranker)
    for r in range(1, schedule.rounds + 1):
        folder = out / f"round-{r}"
        mined = f"dense:window=1-{schedule.depth},k={schedule.candidates},max_length={schedule.doc_max_length}"
        for phase, train_phase in (("ranker", _ar2_ranker), ("retriever", _ar2_retriever)):
            name = f"round {r} {phase}"
            if name not in state["done"]:
                train_phase(schedule, r, mined, current_retriever, current_ranker, dataset, folder, log)
                state["done"].append(name)
                write_json(state_path, state)
            if phase == "ranker":
                current_ranker = folder / "ranker"
        current_retriever = folder / "retriever"
    for name, path in (("retriever", current_retriever), ("ranker", current_ranker)):
        link = out / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(path.relative_to(out), target_is_directory=True)
    return out / "retriever"


def _ar2_queries(dataset: Dataset, schedule: AR2Schedule) -> Dataset:
    """The training queries, or ``schedule.queries`` of them drawn at random (seeded)."""
    if not schedule.queries or schedule.queries >= len(dataset.qrels):
        return dataset
    import dataclasses

    import numpy as np

    keep = sorted(np.random.default_rng(schedule.seed).choice(sorted(dataset.qrels), schedule.queries, replace=False))
    return dataclasses.replace(dataset, qrels={q: dataset.qrels[q] for q in keep})


def _ar2_ranker(schedule: AR2Schedule, r: int, mined: str, retriever: Path, ranker: Path, dataset, folder: Path, log):
    """Round ``r``'s ranker: lists of the retriever's candidates, InfoNCE at temperature 1."""
    from rankwise.models import CrossEncoder
    from rankwise.training import TrainConfig, train

    log(f"round {r} ranker: candidates from {retriever}")
    model = CrossEncoder.load(ranker)
    cfg = TrainConfig(
        kind="cross-encoder",
        loss="infonce:temperature=1.0",
        negatives=f"{mined},model={retriever}",
        list_size=schedule.candidates + 1,
        batch_size=schedule.ranker_batch,
        steps=schedule.ranker_steps,
        lr=schedule.ranker_lr,
        pair_max_length=schedule.query_max_length + schedule.doc_max_length,
        seed=schedule.seed + r,
    )
    train(model, dataset, cfg, folder / "ranker-run", resume=True, log=log)
    model.save(folder / "ranker")


def _ar2_retriever(
    schedule: AR2Schedule, r: int, mined: str, retriever: Path, ranker: Path, dataset, folder: Path, log
):
    """Round ``r``'s retriever: the ranker scores the candidates, AR2's loss learns from them."""
    from rankwise.models import BiEncoder
    from rankwise.training import TrainConfig, train

    log(f"round {r} retriever: the ranker {ranker} scores the candidates")
    model = BiEncoder.load(
        str(retriever), query_max_length=schedule.query_max_length, doc_max_length=schedule.doc_max_length
    )
    cfg = TrainConfig(
        loss=f"ar2:adv_lambda={schedule.adv_lambda}",
        negatives=f"{mined},model={retriever},teacher={ranker}",
        negatives_per_query=schedule.candidates,
        batch_size=schedule.retriever_batch,
        steps=schedule.retriever_steps,
        lr=schedule.retriever_lr,
        seed=schedule.seed + r,
    )
    train(model, dataset, cfg, folder / "retriever-run", resume=True, log=log)
    model.save(folder / "retriever")

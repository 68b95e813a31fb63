"""Where each training query's hard negatives come from (``--negatives``), one class each,
found by name in :data:`NEGATIVES`; pass your own :class:`NegativesStrategy` subclass to use
another.

* ``inbatch`` — only the other queries' documents in the batch (random negatives).
* ``file`` — the hard negatives the training file carries (e.g. from ``rankwise mine``).
* ``bm25:...`` / ``dense:...`` / ``fused:...`` (BM25 and the dense model fused, ``fusion=rrf``) —
  static hard negatives mined once before training with
  :func:`rankwise.negatives.mining.mine` (same options, e.g. ``bm25:k=7,window=10-100``),
  written to ``RUN/negatives.jsonl`` (resumable).
* ``star:source=bm25,random=1,...`` — STAR (Zhan et al., SIGIR 2021): static hard negatives
  mixed with random negatives so training stays stable. The paper approximates random
  negatives by in-batch negatives; here every query also gets ``random`` documents drawn
  uniformly from the corpus each step, so the hard:random mix is set, not left to the batch.
* ``dynamic:every=200,...`` — ADORE-style (Zhan et al., SIGIR 2021) dynamic hard negatives:
  every ``every`` steps the current model re-mines each training query's top documents with the
  same code as ``rankwise mine`` (dense). ``reencode=true`` re-encodes the corpus each refresh
  (both towers train here); ``reencode=false`` keeps the index built by the starting model and
  re-encodes only the queries, as ADORE does with its frozen document encoder. The schedule
  and each refresh's cost are printed.

Each query's hard negatives are sampled per step (``negatives_per_query`` of them). A strategy
is a dataclass of its options plus run state; the trainer works on a copy, so one object can
configure many runs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from rankwise.data.beir import Dataset
from rankwise.data.examples import TeacherScores, TrainExample
from rankwise.errors import ConfigError, DataError, RankwiseError
from rankwise.index.retrieve import corpus_texts
from rankwise.io import write_text
from rankwise.negatives.mining import MineOptions, MineStats, mine
from rankwise.registry import Registry

Log = Callable[[str], None]


@dataclass
class NegativesStrategy:
    """The negatives of a run: prepared once, refreshed on schedule, sampled per step."""

    uses_hard: ClassVar[bool] = True  # gives queries hard negatives of their own
    needs_corpus: ClassVar[bool] = False  # mines from the training corpus (needs query ids)
    reencodes: ClassVar[bool] = False  # refresh() re-encodes texts with the model being trained

    def prepare(
        self,
        examples: list[TrainExample],
        dataset: Dataset | None,
        work_dir: Path,
        *,
        model=None,
        show_progress: bool = False,
        log: Log = print,
    ) -> None:
        """Attach hard negatives to ``examples`` (in place) before training starts."""

    def due(self, step: int) -> bool:
        """Whether :meth:`refresh` runs before ``step``."""
        return False

    def refresh(
        self, step: int, model, examples: list[TrainExample], work_dir: Path, *, total_steps: int = 0, log: Log = print
    ) -> None:
        """Re-mine with the model as it is now (dynamic strategies)."""

    def extra(self, indices: Sequence[int], rng: np.random.Generator) -> list[list[tuple[str, str]]] | None:
        """Documents added to the batch for each example (e.g. STAR's random negatives)."""
        return None

    def state_dict(self, examples: list[TrainExample]) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any], examples: list[TrainExample]) -> None:
        pass

    def __str__(self) -> str:
        return NEGATIVES.spec_of(self) or type(self).__name__


NEGATIVES: Registry[NegativesStrategy] = Registry("negatives", NegativesStrategy)


@NEGATIVES.register("inbatch")
@dataclass
class InBatchNegatives(NegativesStrategy):
    uses_hard: ClassVar[bool] = False

    def prepare(self, examples, dataset, work_dir, *, model=None, show_progress=False, log=print) -> None:
        for ex in examples:
            ex.negatives, ex.scores = [], None


@NEGATIVES.register("file")
@dataclass
class FileNegatives(NegativesStrategy):
    def prepare(self, examples, dataset, work_dir, *, model=None, show_progress=False, log=print) -> None:
        if not any(ex.negatives for ex in examples):
            raise ConfigError(
                "negatives 'file': the training examples carry no negatives (mine them with `rankwise mine`)"
            )


def attach_mined(examples: list[TrainExample], path: Path, dataset: Dataset) -> None:
    """Give each example the negatives (ranks, scores, teacher scores) of its query in a mined file."""
    rows = {}
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        row = json.loads(line)
        rows[row["query_id"]] = (row, line_no)
    for ex in examples:
        found = rows.get(ex.query_id or "")
        if found is None:
            ex.negatives, ex.scores = [], None
            continue
        row, line_no = found
        negs = []
        for did in row["negative_ids"]:
            if did not in dataset.corpus:
                raise DataError(f"unknown document {did!r}", path=path, line=line_no, field="negative_ids")
            negs.append((did, dataset.corpus[did].full_text))
        ex.negatives = negs
        keys = ("positive_ranks", "positive_scores", "negative_ranks", "negative_scores")
        ex.mined = {k: row["mined"][k] for k in keys if k in row["mined"]}
        sc = row.get("scores")
        ex.scores = TeacherScores(sc["positives"], sc["negatives"]) if sc else None


def mine_shared(
    dataset: Dataset,
    options: MineOptions,
    path: Path,
    *,
    model=None,
    embeddings: np.ndarray | None = None,
    device=None,
    show_progress: bool = False,
    log: Callable[[str], None] = print,
) -> None:
    """:func:`~rankwise.negatives.mining.mine` into ``path``. In a data-parallel run the processes
    share the work instead of each doing all of it: a dense corpus is encoded in shares, each process
    mines its contiguous share of the queries, and every process writes the whole file (rows in the
    one-process order; each query's sampling is seeded by its id, so the rows are the same)."""
    from rankwise.distributed import current, gather_each

    shard = current()
    if shard is None:
        mine(
            dataset,
            options,
            path,
            lenient=True,
            show_progress=show_progress,
            model=model,
            embeddings=embeddings,
            log_fn=log,
        )
        return
    if options.method == "dense" and embeddings is None:
        if model is None:
            from rankwise.models import BiEncoder

            model = BiEncoder.load(
                options.model, query_max_length=options.max_length, doc_max_length=options.max_length, device=device
            )
        embeddings = _encode_corpus(model, dataset)
    qids = list(dataset.qrels)
    share = set(qids[shard.part(len(qids))])
    mine_qrels = {q: j for q, j in dataset.qrels.items() if q in share}
    part = path.with_name(f"{path.stem}.part{shard.rank}{path.suffix}")
    try:
        stats = mine(
            replace(dataset, qrels=mine_qrels, warnings=[]),
            options,
            part,
            lenient=True,
            show_progress=False,
            model=model,
            embeddings=embeddings,
            log_fn=lambda _: None,
        )
        mined: Any = (part.read_text(encoding="utf-8"), stats)
    except RankwiseError as err:  # raised on every process below, so that none waits for this one
        mined = str(err)
    parts = gather_each(mined)
    failed = next((p for p in parts if isinstance(p, str)), None)
    if failed is not None:
        raise RankwiseError(failed)
    write_text(path, "".join(p[0] for p in parts))
    part.unlink(missing_ok=True)
    part.with_name(part.name + ".stats.json").unlink(missing_ok=True)
    total = MineStats.total([p[1] for p in parts])
    log(
        f"mined {total.negatives} negatives for {total.queries} queries ({options.method}) in {shard.world} "
        "processes; " + total.summary(options.k)
    )


def _encode_corpus(model, dataset: Dataset) -> np.ndarray:
    """The corpus's document embeddings in corpus order, encoded in shares in a data-parallel run."""
    from rankwise.distributed import encode_shared

    _, texts = corpus_texts(dataset)
    return encode_shared(lambda part: model.encode(part, "doc", batch_size=128), texts)


def _receive(path: Path) -> None:
    """In a data-parallel run, rank 0's copy of ``path`` on every process (their disks may differ)."""
    from rankwise.distributed import current, from_main, is_main

    if current() is None:
        return
    text = from_main(path.read_text(encoding="utf-8") if is_main() else None)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        write_text(path, text)


@NEGATIVES.register("bm25", method="bm25")
@NEGATIVES.register("dense", method="dense")
@NEGATIVES.register("fused", method="fused")
@dataclass
class MinedNegatives(NegativesStrategy, MineOptions):
    """Static hard negatives: every training query's top documents, mined once (``rankwise mine``'s options)."""

    needs_corpus: ClassVar[bool] = True
    dataset: Dataset | None = field(default=None, init=False, repr=False, compare=False)

    def _require(self, dataset: Dataset | None) -> Dataset:
        if dataset is None:
            raise ConfigError(f"negatives {str(self)!r} mines from a corpus: pass the training dataset (corpus=)")
        self.dataset = dataset
        return dataset

    def prepare(self, examples, dataset, work_dir, *, model=None, show_progress=False, log=print) -> None:
        from rankwise.distributed import from_main

        dataset = self._require(dataset)
        path = work_dir / "negatives.jsonl"
        if not from_main(path.is_file()):  # rank 0's disk decides, so every process takes one branch
            device = getattr(model, "device", None)  # a data-parallel process encodes on its own device
            mine_shared(dataset, self, path, device=device, show_progress=show_progress, log=log)
        else:
            _receive(path)
        attach_mined(examples, path, dataset)


@NEGATIVES.register("star")
@dataclass
class StarNegatives(MinedNegatives):
    """STAR: static hard negatives from ``source`` plus ``random`` corpus documents per query per step."""

    method: str = field(default="bm25", init=False)
    source: str = "bm25"
    random: int = 1

    def __post_init__(self) -> None:
        if self.random < 0:
            raise ValueError("random must be >= 0")
        self.method = self.source
        super().__post_init__()

    def extra(self, indices, rng):
        if not self.random or self.dataset is None:
            return None
        ids = list(self.dataset.corpus)
        out = []
        for _ in indices:
            picks = rng.choice(len(ids), size=self.random, replace=False)
            out.append([(ids[int(j)], self.dataset.corpus[ids[int(j)]].full_text) for j in picks])
        return out


@NEGATIVES.register("dynamic", method="dense")
@dataclass
class DynamicNegatives(MinedNegatives):
    """ADORE-style: the current model re-mines every ``every`` steps (``reencode=false``: fixed document index)."""

    reencodes: ClassVar[bool] = True
    every: int = 200
    reencode: bool = True
    last_refresh: int = field(default=-1, init=False, compare=False)
    refresh_seconds: list[float] = field(default_factory=list, init=False, compare=False)
    index: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError("every must be >= 1")
        super().__post_init__()

    def prepare(self, examples, dataset, work_dir, *, model=None, show_progress=False, log=print) -> None:
        self._require(dataset)
        log(
            f"dynamic negatives: re-mined with the current model every {self.every} steps "
            f"({'corpus re-encoded' if self.reencode else 'fixed document index, queries re-encoded'})"
        )
        # mined at step 0 by refresh(), with the model that starts training

    def due(self, step: int) -> bool:
        return self.last_refresh < 0 or step - self.last_refresh >= self.every

    def refresh(self, step, model, examples, work_dir, *, total_steps=0, log=print) -> None:
        from rankwise.distributed import current
        from rankwise.models.modes import evaluating

        t0 = time.perf_counter()
        shard = current()
        with evaluating(model, grad=True):  # encode() itself runs without gradients
            if not self.reencode and self.index is None:  # ADORE: the starting model's document index stays
                self.index = _encode_corpus(model, self.dataset)
            # data-parallel: the processes split the work and each attaches the whole result from its own file
            path = work_dir / f"negatives-step{step}{f'-rank{shard.rank}' if shard else ''}.jsonl"
            mine_shared(self.dataset, self, path, model=model, embeddings=self.index, log=lambda _: None)
        attach_mined(examples, path, self.dataset)
        path.unlink(missing_ok=True)
        self.last_refresh = step
        took = time.perf_counter() - t0
        self.refresh_seconds.append(took)
        left = max(0, (total_steps - step - 1) // self.every) if total_steps else 0
        log(
            f"step {step}: re-mined negatives with the current model in {took:.1f} s"
            + (f"; {left} more refreshes scheduled, ~{left * took:.0f} s" if left else "")
        )

    def state_dict(self, examples):
        # the negatives of the last refresh depend on the model then
        state: dict[str, Any] = {
            "last_refresh": self.last_refresh,
            "refresh_seconds": self.refresh_seconds,
            "negatives": [[d for d, _ in ex.negatives] for ex in examples],
            "mined": [ex.mined for ex in examples],
        }
        if self.index is not None:
            state["index"] = self.index
        return state

    def load_state_dict(self, state, examples) -> None:
        self.last_refresh = state["last_refresh"]
        self.refresh_seconds = list(state.get("refresh_seconds", []))
        if self.dataset is not None:
            for ex, ids, mined in zip(examples, state["negatives"], state["mined"]):
                ex.negatives = [(d, self.dataset.corpus[d].full_text) for d in ids]
                ex.mined = mined
        if "index" in state:
            self.index = state["index"]

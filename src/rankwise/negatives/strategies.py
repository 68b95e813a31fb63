"""Where each training query's negatives come from (``--negatives``):

* ``inbatch`` — only the other queries' documents in the batch (random negatives).
* ``file`` — the hard negatives the training file carries (e.g. from ``rankwise mine``).
* ``bm25:...`` / ``dense:...`` — static hard negatives mined once before training with
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

Each query's hard negatives are sampled per step (``negatives_per_query`` of them).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from rankwise.data.beir import Dataset
from rankwise.data.examples import TrainExample
from rankwise.errors import ConfigError, DataError
from rankwise.negatives.mining import MineOptions, mine
from rankwise.spec import parse_options, split_spec

KINDS = ("inbatch", "file", "bm25", "dense", "star", "dynamic")


@dataclass
class StarOptions:
    source: str = "bm25"
    random: int = 1


@dataclass
class DynamicOptions:
    every: int = 200
    reencode: bool = True


def _split_mine_params(spec: str, params: dict[str, str], own: type) -> tuple[dict[str, str], dict[str, str]]:
    names = {f.name for f in fields(own)}
    mine_names = {f.name for f in fields(MineOptions)} - {"method"}
    mine_p, own_p = {}, {}
    for k, v in params.items():
        if k in names:
            own_p[k] = v
        elif k in mine_names:
            mine_p[k] = v
        else:
            raise ConfigError(f"negatives {spec!r}: unknown parameter {k!r}; it takes: {', '.join(sorted(names | mine_names))}")
    return own_p, mine_p


class Negatives:
    """The negatives of a run: prepared once, refreshed on schedule, sampled per step."""

    def __init__(self, spec: str = "inbatch") -> None:
        self.spec = spec
        self.kind, params = split_spec(spec)
        if self.kind not in KINDS:
            raise ConfigError(f"negatives {spec!r}: unknown strategy {self.kind!r}; available: {', '.join(KINDS)}")
        self.star: StarOptions | None = None
        self.dynamic: DynamicOptions | None = None
        self.mine_options: MineOptions | None = None
        if self.kind in ("bm25", "dense"):
            self.mine_options = MineOptions.parse(spec)
        elif self.kind == "star":
            own, mp = _split_mine_params(spec, params, StarOptions)
            self.star = parse_options(f"negatives {spec!r}", own, StarOptions)
            self.mine_options = parse_options(f"negatives {spec!r}", mp, MineOptions, method=self.star.source)
            if self.star.random < 0:
                raise ConfigError(f"negatives {spec!r}: random must be >= 0")
        elif self.kind == "dynamic":
            own, mp = _split_mine_params(spec, params, DynamicOptions)
            self.dynamic = parse_options(f"negatives {spec!r}", own, DynamicOptions)
            if self.dynamic.every < 1:
                raise ConfigError(f"negatives {spec!r}: every must be >= 1")
            self.mine_options = parse_options(f"negatives {spec!r}", mp, MineOptions, method="dense")
        elif params:
            raise ConfigError(f"negatives {spec!r}: {self.kind} takes no parameters")
        self.last_refresh = -1
        self.refresh_seconds: list[float] = []
        self._corpus_ids: list[str] = []
        self._dataset: Dataset | None = None
        self._index_cache: Any = None

    @property
    def uses_hard(self) -> bool:
        return self.kind != "inbatch"

    # ------------------------------------------------------------------ preparing
    def prepare(self, examples: list[TrainExample], dataset: Dataset | None, out_dir: Path, *, model=None,
                show_progress: bool = True, log: Callable[[str], None] = print) -> None:
        """Attach hard negatives to ``examples`` (in place) before training starts."""
        self._dataset = dataset
        if self.kind == "inbatch":
            for ex in examples:
                ex.negatives = []
            return
        if self.kind == "file":
            if not any(ex.negatives for ex in examples):
                raise ConfigError("negatives 'file': the training examples carry no negatives (mine them with `rankwise mine`)")
            return
        if dataset is None:
            raise ConfigError(f"negatives {self.spec!r} mines from a corpus: train with --data")
        self._corpus_ids = list(dataset.corpus)
        if self.kind == "dynamic":
            log(f"dynamic negatives: re-mined with the current model every {self.dynamic.every} steps "
                f"({'corpus re-encoded' if self.dynamic.reencode else 'fixed document index, queries re-encoded'})")
            return  # mined at step 0 by refresh(), with the model that starts training
        path = out_dir / "negatives.jsonl"
        if not path.is_file():
            mine(dataset, self.mine_options, path, lenient=True, show_progress=show_progress, log_fn=log)
        self._attach(examples, path, dataset)

    def _attach(self, examples: list[TrainExample], path: Path, dataset: Dataset) -> None:
        rows = {}
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            row = json.loads(line)
            rows[row["query_id"]] = (row, line_no)
        for ex in examples:
            found = rows.get(ex.query_id or "")
            if found is None:
                ex.negatives = []
                continue
            row, line_no = found
            negs = []
            for did in row["negative_ids"]:
                if did not in dataset.corpus:
                    raise DataError(f"unknown document {did!r}", path=path, line=line_no, field="negative_ids")
                negs.append((did, dataset.corpus[did].full_text))
            ex.negatives = negs
            ex.mined = {k: row["mined"][k] for k in ("positive_ranks", "positive_scores", "negative_ranks", "negative_scores") if k in row["mined"]}
            if "scores" in row:
                ex.scores = row["scores"]

    # ------------------------------------------------------------------- dynamic
    def due(self, step: int) -> bool:
        return self.kind == "dynamic" and (self.last_refresh < 0 or step - self.last_refresh >= self.dynamic.every)

    def refresh(self, step: int, model, examples: list[TrainExample], out_dir: Path, *, total_steps: int = 0,
                show_progress: bool = False, log: Callable[[str], None] = print) -> None:
        """Re-mine every query's negatives with ``model`` as it is now (ADORE-style)."""
        t0 = time.perf_counter()
        was_training = model.training
        model.eval()
        path = out_dir / f"negatives-step{step}.jsonl"
        opts = self.mine_options
        partial = out_dir / (path.name + ".partial")
        if not self.dynamic.reencode:
            # ADORE: the starting model's document index stays; only queries are re-encoded
            if self._index_cache is None:
                self._index_cache = model.encode([self._dataset.corpus[d].full_text for d in self._corpus_ids], "doc", batch_size=128)
            partial.mkdir(parents=True, exist_ok=True)
            with open(partial / "corpus-embeddings.npy", "wb") as fh:
                np.save(fh, self._index_cache)
        mine(self._dataset, opts, path, lenient=True, show_progress=show_progress, model=model, log_fn=lambda _: None)
        self._attach(examples, path, self._dataset)
        path.unlink(missing_ok=True)
        model.train(was_training)
        self.last_refresh = step
        took = time.perf_counter() - t0
        self.refresh_seconds.append(took)
        left = max(0, (total_steps - step - 1) // self.dynamic.every) if total_steps else 0
        log(f"step {step}: re-mined negatives with the current model in {took:.1f} s"
            + (f"; {left} more refreshes scheduled, ~{left * took:.0f} s" if left else ""))

    # ------------------------------------------------------------------ sampling
    def extra(self, indices: Sequence[int], rng: np.random.Generator) -> list[list[tuple[str, str]]] | None:
        """STAR's random negatives for the examples of a batch."""
        if self.kind != "star" or not self.star.random or self._dataset is None:
            return None
        out = []
        for _ in indices:
            picks = rng.choice(len(self._corpus_ids), size=self.star.random, replace=False)
            out.append([(self._corpus_ids[int(j)], self._dataset.corpus[self._corpus_ids[int(j)]].full_text) for j in picks])
        return out

    # --------------------------------------------------------------------- state
    def state_dict(self, examples: list[TrainExample]) -> dict[str, Any]:
        state: dict[str, Any] = {"last_refresh": self.last_refresh, "refresh_seconds": self.refresh_seconds}
        if self.kind == "dynamic":  # the negatives of the last refresh depend on the model then
            state["negatives"] = [[d for d, _ in ex.negatives] for ex in examples]
            state["mined"] = [ex.mined for ex in examples]
            if self._index_cache is not None:
                state["index"] = self._index_cache
        return state

    def load_state_dict(self, state: dict[str, Any], examples: list[TrainExample]) -> None:
        self.last_refresh = state["last_refresh"]
        self.refresh_seconds = list(state.get("refresh_seconds", []))
        if "negatives" in state and self._dataset is not None:
            for ex, ids, mined in zip(examples, state["negatives"], state["mined"]):
                ex.negatives = [(d, self._dataset.corpus[d].full_text) for d in ids]
                ex.mined = mined
        if "index" in state:
            self._index_cache = state["index"]

"""What a training step is made of besides the model: a :class:`BatchSource` (which examples form
the batch, :mod:`rankwise.training.samplers`; which negatives each query gets,
:mod:`rankwise.negatives.strategies`; the model's family lays the batch out) yields a :class:`Step`
that carries its examples, and an :class:`Objective` (the loss, false-negative weights,
:mod:`rankwise.negatives.false_negatives`; teacher scores; curricula,
:mod:`rankwise.negatives.curriculum`; diagnostics) turns the step's scores into ``(loss, info)``.
:class:`Plan` holds both for the loop; the source's state goes into every checkpoint so a resumed
run continues exactly."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rankwise.batch import hard_negatives
from rankwise.data.beir import Dataset
from rankwise.data.examples import TrainExample
from rankwise.distributed import encode_shared
from rankwise.errors import ConfigError
from rankwise.families import Family, family_of
from rankwise.negatives.strategies import FileNegatives, InBatchNegatives
from rankwise.training.batching import teacher_matrix
from rankwise.training.config import TrainConfig
from rankwise.training.diagnostics import batch_diagnostics


@dataclass
class Step:
    """One optimizer step's data: its number, its examples and their batch."""

    index: int
    examples: list[TrainExample]
    batch: Any


class BatchSource:
    """Sampler, negatives and the model's family: ``step(n)`` is step n's :class:`Step`."""

    def __init__(self, config: TrainConfig, examples: list[TrainExample], dataset: Dataset | None, work_dir: Path):
        self.config, self.examples, self.dataset, self.work_dir = config, examples, dataset, work_dir
        default = FileNegatives() if any(ex.negatives for ex in examples) else InBatchNegatives()
        self.negatives = copy.deepcopy(config.negatives) if config.negatives is not None else default
        self.sampler = copy.deepcopy(config.batching).bind(len(examples), config.batch_size, config.seed)
        self.family: Family | None = None  # the model's, set by prepare(model)
        if self.negatives.needs_corpus and any(ex.query_id is None for ex in examples):
            raise ConfigError(
                f"negatives {str(self.negatives)!r} mines per query id: train from qrels or an id-form training file"
            )
        if self.negatives.needs_corpus and dataset is None:
            raise ConfigError(
                f"negatives {str(self.negatives)!r} mines from a corpus: pass the training dataset (corpus=)"
            )

    @property
    def n_negatives(self) -> int:
        return self.family.negatives_per_query(self.config, self.negatives.uses_hard) if self.family else 0

    def _check_embeds(self) -> None:
        """Parts that re-encode texts with the model being trained need a family that embeds them."""
        if self.family.embeds:
            return
        wants = [f"negatives {str(self.negatives)!r}"] if self.negatives.reencodes else []
        wants += [f"batching {str(self.sampler)!r}"] if self.sampler.embeds_queries else []
        if wants:
            raise ConfigError(
                f"{wants[0]} re-encodes texts with the model being trained, and a {self.family.name} does not "
                "embed texts alone: choose static negatives (bm25, dense, star, file) and random or nodup batching"
            )

    def prepare(self, model, *, show_progress: bool = False, log: Callable[[str], None] = print) -> None:
        """Before the first step (and before a resume restores state): the family, static mining."""
        self.family = family_of(model)
        self._check_embeds()
        self.negatives.prepare(
            self.examples, self.dataset, self.work_dir, model=self.family.model, show_progress=show_progress, log=log
        )
        if self.sampler.wants_lengths:  # an example's length: its longest positive or hard negative, in tokens
            texts = [max((t for _, t in ex.positives + ex.negatives), key=len) for ex in self.examples]
            self.sampler.lengths = self.family.lengths(texts)

    def before_step(self, step: int, log: Callable[[str], None] = print) -> None:
        """Re-mining and re-clustering that are due before ``step`` (with the model as it is now)."""
        model = self.family.model
        if self.negatives.due(step):
            self.negatives.refresh(step, model, self.examples, self.work_dir, total_steps=self.config.steps, log=log)
        if self.sampler.needs_embeddings(step):
            # data-parallel: each process embeds a share, and all cluster the same gathered rows alike
            emb = encode_shared(
                lambda part: self.family.encode(part, "query", batch_size=128), [ex.query for ex in self.examples]
            )
            self.sampler.cluster(step, emb)

    def step(self, step: int) -> Step:
        """The step's examples and their batch, as the model's family lays it out."""
        if self.family is None:
            raise ConfigError("a batch before prepare(model): the batch's layout is the model family's")
        idx = self.sampler.indices(step, self.examples)
        rng = np.random.default_rng([self.config.seed, 1, step])
        exs = [self.examples[int(i)] for i in idx]
        extra, choose = self.negatives.extra(idx, rng), self.sampler.choose_negatives()
        return Step(step, exs, self.family.batch(exs, rng, self.config, self.n_negatives, extra, choose))

    def state_dict(self) -> dict[str, Any]:
        return {"negatives": self.negatives.state_dict(self.examples), "sampler": self.sampler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.negatives.load_state_dict(state["negatives"], self.examples)
        self.sampler.load_state_dict(state["sampler"])


class Objective:
    """``objective(scores, step) -> (loss, info)``: the configured loss over the step's labels and
    mask, with false-negative weights, teacher scores and curriculum weights, and what to log."""

    def __init__(self, config: TrainConfig, uses_hard: bool) -> None:
        self.loss_fn, self.every = config.loss, config.diagnostics_every
        self.false_negatives, self.curriculum = config.false_negatives, config.curriculum
        self.distil = self.loss_fn.facts.needs_teacher
        if self.false_negatives is not None and not uses_hard:
            raise ConfigError(
                "false-negative weighting weights mined hard negatives: choose a negatives strategy with hard negatives"
            )
        if self.distil and not uses_hard:
            raise ConfigError(
                f"loss {self.loss_fn.spec!r} distils a teacher's scores of each query's positive and hard negatives: "
                "choose a negatives strategy with hard negatives (a mined file with teacher scores)"
            )

    def needs_teacher_scores(self) -> list[str]:
        needs = [f"loss {self.loss_fn.spec!r}"] if self.distil else []
        fn = self.false_negatives
        return needs + ([f"false negatives {str(fn)!r}"] if fn is not None and fn.needs_teacher_scores else [])

    def check(self, examples: list[TrainExample], log: Callable[[str], None]) -> None:
        """Teacher scores where a part needs them: none is an error, some missing a warning."""
        needs = self.needs_teacher_scores()
        if not needs:
            return
        scored = sum(ex.scores is not None for ex in examples)
        if not scored:
            raise ConfigError(
                f"{needs[0]} needs teacher scores, and no training example has them: mine with a teacher "
                '(teacher= when mining), or give "scores" in the training file'
            )
        if scored < len(examples):
            log(
                f"warning: {len(examples) - scored} of {len(examples)} training examples have no teacher "
                f"scores; {needs[0]} leaves them out"
            )

    def __call__(self, scores: torch.Tensor, step: Step) -> tuple[torch.Tensor, dict[str, float]]:
        """The step's loss and what to log of it (mean false-negative and curriculum weights, and
        every ``diagnostics_every`` steps the training diagnostics of :mod:`rankwise.training.diagnostics`)."""
        batch, examples, info = step.batch, step.examples, {}
        raw = scores
        if self.false_negatives is not None:
            scores, w = self.false_negatives.adjust(scores, batch, examples)
            own = [w[i, c].item() for i, hard in enumerate(hard_negatives(batch)) for c, _ in hard]
            info["fn_weight"] = float(np.mean(own)) if own else 1.0
        labels = batch.labels.to(scores.device, scores.dtype)
        kw: dict[str, Any] = {}
        if batch.mask is not None:  # a list batch's padding
            kw["mask"] = batch.mask.to(scores.device)
        if self.distil:  # distillation terms see only the pairs the teacher scored
            teacher, scored = teacher_matrix(batch, examples)
            kw["teacher_mask"] = scored.to(scores.device)
            kw["teacher_scores"] = teacher.to(scores.device, scores.dtype)
        loss = self._weighted_loss(scores, labels, step, kw, info)
        if self.every and step.index % self.every == 0:
            diag = batch_diagnostics(raw, loss, batch, examples, kw.get("mask"))
            info.update({f"diag_{k}": v for k, v in diag.items()})
        return loss, info

    def _weighted_loss(self, scores, labels, step: Step, kw, info) -> torch.Tensor:
        weights = self.curriculum.weights(step.index, step.batch, step.examples) if self.curriculum else None
        if weights is None:
            return self.loss_fn(scores, labels, **kw)
        weights = weights.to(scores.device)
        info["curriculum_weight"] = float(weights.mean())
        # sample mode: each query's loss times its weight, averaged (the loss's weighted mean
        # normalises by the weights, so scale back by their mean); batch mode: batch loss x mean
        base = (
            self.loss_fn(scores, labels, weights=weights, **kw)
            if self.curriculum.mode == "sample"
            else self.loss_fn(scores, labels, **kw)
        )
        return base * weights.mean().to(base.dtype)


class Plan:
    """A run's :class:`BatchSource` and :class:`Objective`, copied from ``config`` (so one config
    can configure many runs) and checked against each other and the examples before any work."""

    def __init__(
        self,
        config: TrainConfig,
        examples: list[TrainExample],
        *,
        dataset: Dataset | None = None,
        work_dir: str | Path = ".",
        show_progress: bool = False,
        log: Callable[[str], None] = print,
    ) -> None:
        self.config, self.show_progress, self.log = config, show_progress, log
        self.source = BatchSource(config, examples, dataset, Path(work_dir))
        self.objective = Objective(config, self.source.negatives.uses_hard)

    # the source's parts, as the loop and the tests read them
    examples = property(lambda self: self.source.examples)
    sampler = property(lambda self: self.source.sampler)
    negatives = property(lambda self: self.source.negatives)
    family = property(lambda self: self.source.family)

    def prepare(self, model) -> None:
        self.source.prepare(model, show_progress=self.show_progress, log=self.log)
        self.objective.check(self.source.examples, self.log)

    def before_step(self, step: int, model=None) -> None:
        """``model``: the one :meth:`prepare` was given (the family's; other callers may name it)."""
        if model is not None and model is not self.source.family.model:
            raise ConfigError("Plan.before_step: the model is not the one the plan was prepared with")
        self.source.before_step(step, self.log)

    def batch(self, step: int) -> tuple[list[TrainExample], Any]:
        """Step ``step``'s examples and batch (:meth:`BatchSource.step`)."""
        s = self.source.step(step)
        return s.examples, s.batch

    def state_dict(self) -> dict[str, Any]:
        return self.source.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.source.load_state_dict(state)

"""What a training step is made of besides the model and the loss: which examples form the batch
(:mod:`rankwise.negatives.samplers`), which negatives each query gets
(:mod:`rankwise.negatives.strategies`), how uncertain negatives are down-weighted
(:mod:`rankwise.negatives.false_negatives`) and how samples are weighted over time
(:mod:`rankwise.negatives.curriculum`). The loop asks the plan; the plan's state goes into
every checkpoint so a resumed run continues exactly."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rankwise.data.beir import Dataset
from rankwise.data.examples import TrainExample
from rankwise.distributed import encode_shared
from rankwise.errors import ConfigError
from rankwise.families import Family, family_of
from rankwise.negatives.strategies import FileNegatives, InBatchNegatives
from rankwise.training.batching import hard_negatives, teacher_matrix
from rankwise.training.config import TrainConfig
from rankwise.training.diagnostics import batch_diagnostics


class Plan:
    """The run's parts, copied from ``config`` (so one config can configure many runs), checked
    against each other and the examples before any work."""

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
        self.config, self.examples, self.dataset = config, examples, dataset
        self.work_dir, self.show_progress, self.log = Path(work_dir), show_progress, log
        default = FileNegatives() if any(ex.negatives for ex in examples) else InBatchNegatives()
        self.negatives = copy.deepcopy(config.negatives) if config.negatives is not None else default
        self.sampler = copy.deepcopy(config.batching).bind(len(examples), config.batch_size, config.seed)
        self.false_negatives = config.false_negatives
        self.curriculum = config.curriculum
        self.loss_fn = config.loss
        self.family: Family | None = None  # the model's family, set by prepare(model)
        if self.negatives.needs_corpus and any(ex.query_id is None for ex in examples):
            raise ConfigError(
                f"negatives {str(self.negatives)!r} mines per query id: train from qrels or an id-form training file"
            )
        if self.negatives.needs_corpus and dataset is None:
            raise ConfigError(
                f"negatives {str(self.negatives)!r} mines from a corpus: pass the training dataset (corpus=)"
            )
        if self.false_negatives is not None and not self.negatives.uses_hard:
            raise ConfigError(
                "false-negative weighting weights mined hard negatives: choose a negatives strategy with hard negatives"
            )
        self.distil = self.loss_fn.facts.needs_teacher
        if self.distil and not self.negatives.uses_hard:
            raise ConfigError(
                f"loss {self.loss_fn.spec!r} distils a teacher's scores of each query's positive and hard negatives: "
                "choose a negatives strategy with hard negatives (a mined file with teacher scores)"
            )

    @property
    def n_negatives(self) -> int:
        return self.family.negatives_per_query(self.config, self.negatives.uses_hard) if self.family else 0

    def prepare(self, model) -> None:
        """Before the first step (and before a resume restores state): the model's family, static mining."""
        self.family = family_of(model)
        if not self.family.embeds:  # parts that re-encode texts with the model being trained
            embeds = [
                what
                for what, on in (
                    (f"negatives {str(self.negatives)!r}", self.negatives.reencodes),
                    (f"batching {str(self.sampler)!r}", self.sampler.embeds_queries),
                )
                if on
            ]
            if embeds:
                raise ConfigError(
                    f"{embeds[0]} re-encodes texts with the model being trained, and a {self.family.name} does not "
                    "embed texts alone: choose static negatives (bm25, dense, star, file) and random or nodup batching"
                )
        self.negatives.prepare(
            self.examples,
            self.dataset,
            self.work_dir,
            model=self.family.model,
            show_progress=self.show_progress,
            log=self.log,
        )
        needs = [
            what
            for what, on in (
                (f"loss {self.loss_fn.spec!r}", self.distil),
                (
                    f"false negatives {str(self.false_negatives)!r}",
                    self.false_negatives is not None and self.false_negatives.needs_teacher_scores,
                ),
            )
            if on
        ]
        if needs:
            scored = sum(ex.scores is not None for ex in self.examples)
            if not scored:
                raise ConfigError(
                    f"{needs[0]} needs teacher scores, and no training example has them: mine with a teacher "
                    '(teacher= when mining), or give "scores" in the training file'
                )
            if scored < len(self.examples):
                self.log(
                    f"warning: {len(self.examples) - scored} of {len(self.examples)} training examples have no teacher "
                    f"scores; {needs[0]} leaves them out"
                )
        if self.sampler.wants_lengths:  # an example's length: its longest positive or hard negative, in tokens
            texts = [max((t for _, t in ex.positives + ex.negatives), key=len) for ex in self.examples]
            self.sampler.lengths = self.family.lengths(texts)

    def before_step(self, step: int, model) -> None:
        if self.negatives.due(step):
            self.negatives.refresh(
                step, model, self.examples, self.work_dir, total_steps=self.config.steps, log=self.log
            )
        if self.sampler.needs_embeddings(step):
            was = model.training
            # data-parallel: each process embeds a share, and all cluster the same gathered rows alike
            emb = encode_shared(
                lambda part: model.encode(part, "query", batch_size=128), [ex.query for ex in self.examples]
            )
            model.train(was)
            self.sampler.cluster(step, emb)

    def batch(self, step: int) -> tuple[list[TrainExample], Any]:
        """The step's examples and their batch, as the model's family lays it out."""
        if self.family is None:
            raise ConfigError("Plan.batch before Plan.prepare(model): the batch's layout is the model family's")
        idx = self.sampler.indices(step, self.examples)
        rng = np.random.default_rng([self.config.seed, 1, step])
        exs = [self.examples[int(i)] for i in idx]
        batch = self.family.batch(
            exs, rng, self.config, self.n_negatives, self.negatives.extra(idx, rng), self.sampler.choose_negatives()
        )
        return exs, batch

    def loss(
        self, scores: torch.Tensor, batch: Any, examples: Sequence[TrainExample], step: int
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The step's loss and what to log of it (mean false-negative and curriculum weights, and
        every ``diagnostics_every`` steps the training diagnostics of :mod:`rankwise.training.diagnostics`)."""
        info: dict[str, float] = {}
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
        loss = self._weighted_loss(scores, labels, batch, examples, step, kw, info)
        every = self.config.diagnostics_every
        if every and step % every == 0:
            info.update(
                {f"diag_{k}": v for k, v in batch_diagnostics(raw, loss, batch, examples, kw.get("mask")).items()}
            )
        return loss, info

    def _weighted_loss(self, scores, labels, batch, examples, step, kw, info) -> torch.Tensor:
        weights = self.curriculum.weights(step, batch, examples) if self.curriculum else None
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

    def state_dict(self) -> dict[str, Any]:
        return {"negatives": self.negatives.state_dict(self.examples), "sampler": self.sampler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.negatives.load_state_dict(state["negatives"], self.examples)
        self.sampler.load_state_dict(state["sampler"])

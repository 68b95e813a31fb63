"""What a training step is made of besides the model and the loss: which examples form the batch
(:mod:`rankwise.negatives.samplers`), which negatives each query gets
(:mod:`rankwise.negatives.strategies`), how uncertain negatives are down-weighted
(:mod:`rankwise.negatives.false_negatives`) and how samples are weighted over time
(:mod:`rankwise.negatives.curriculum`). The loop asks the plan; the plan's state goes into
every checkpoint so a resumed run continues exactly."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from rankwise.data.beir import Dataset
from rankwise.data.examples import TrainExample
from rankwise.errors import ConfigError
from rankwise.losses import NEEDS_TEACHER, parse_spec
from rankwise.negatives.curriculum import Curriculum
from rankwise.negatives.false_negatives import FalseNegatives
from rankwise.negatives.samplers import Sampler
from rankwise.negatives.strategies import Negatives
from rankwise.train.batching import InBatch, build_inbatch, has_teacher_scores, teacher_matrix
from rankwise.train.config import TrainConfig


class Plan:
    def __init__(self, config: TrainConfig, examples: list[TrainExample], *, dataset: Dataset | None = None,
                 out_dir: str | Path = ".", show_progress: bool = False, log: Callable[[str], None] = print) -> None:
        self.config, self.examples, self.dataset = config, examples, dataset
        self.out_dir, self.show_progress, self.log = Path(out_dir), show_progress, log
        spec = config.negatives or ("file" if any(ex.negatives for ex in examples) else "inbatch")
        self.negatives = Negatives(spec)
        self.sampler = Sampler(config.batching, len(examples), config.batch_size, config.seed, bucket=config.length_bucket)
        self.false_negatives = FalseNegatives(config.false_negatives) if config.false_negatives else None
        self.curriculum = Curriculum(config.curriculum) if config.curriculum else None
        self.n_negatives = config.negatives_per_query or (1 if self.negatives.uses_hard else 0)
        if self.negatives.kind in ("bm25", "dense", "star", "dynamic") and any(ex.query_id is None for ex in examples):
            raise ConfigError(f"negatives {spec!r} mines per query id: train from qrels or an id-form training file")
        if self.false_negatives is not None and not self.negatives.uses_hard:
            raise ConfigError("--false-negatives weights mined hard negatives: choose a --negatives strategy with hard negatives")
        self.distil = parse_spec(config.loss)[0] in NEEDS_TEACHER
        if self.distil and not self.negatives.uses_hard:
            raise ConfigError(f"loss {config.loss!r} distils a teacher's scores of each query's positive and hard negatives: "
                              "choose a --negatives strategy with hard negatives (a mined file with teacher scores)")
        self.last_info: dict[str, float] = {}  # the last step's mean false-negative / curriculum weights

    def prepare(self, model) -> None:
        """Before the first step (and before a resume restores state): static mining."""
        self.negatives.prepare(self.examples, self.dataset, self.out_dir, model=model, show_progress=self.show_progress, log=self.log)
        if self.distil:
            scored = sum(has_teacher_scores(ex) for ex in self.examples)
            if not scored:
                raise ConfigError(f"loss {self.config.loss!r} needs teacher scores, and no training example has one per positive and "
                                  "hard negative: mine with --teacher, or give \"scores\" in the training file")
            if scored < len(self.examples):
                self.log(f"warning: {len(self.examples) - scored} of {len(self.examples)} training examples have no teacher scores; "
                         "they add no loss")
        if self.sampler.bucket:  # an example's length: its longest positive or hard negative, in tokens
            texts = [max((t for _, t in ex.positives + ex.negatives), key=len) for ex in self.examples]
            self.sampler.lengths = np.array([len(x) for x in model.token_ids(texts, "doc")])

    def before_step(self, step: int, model) -> None:
        if self.negatives.due(step):
            self.negatives.refresh(step, model, self.examples, self.out_dir, total_steps=self.config.steps, log=self.log)
        if self.sampler.needs_embeddings(step):
            was = model.training
            emb = model.encode([ex.query for ex in self.examples], "query", batch_size=128)
            model.train(was)
            self.sampler.cluster(step, emb)

    def batch(self, step: int) -> tuple[list[TrainExample], InBatch]:
        idx = self.sampler.indices(step, self.examples)
        rng = np.random.default_rng([self.config.seed, 1, step])
        exs = [self.examples[int(i)] for i in idx]
        batch = build_inbatch(exs, rng, self.n_negatives, extra=self.negatives.extra(idx, rng), choose=self.sampler.choose_negatives())
        return exs, batch

    def loss(self, loss_fn, scores: torch.Tensor, batch: InBatch, examples: Sequence[TrainExample], step: int) -> torch.Tensor:
        info: dict[str, Any] = {}
        if self.false_negatives is not None:
            scores, w = self.false_negatives.adjust(scores, batch, examples)
            own = [w[i, c].item() for i, hard in enumerate(batch.hard) for c, _ in hard]
            info["fn_weight"] = float(np.mean(own)) if own else 1.0
        labels = batch.labels.to(scores.dtype)
        if self.distil:  # only the pairs the teacher scored
            teacher, mask = teacher_matrix(batch, examples)
            loss_fn = functools.partial(loss_fn, mask=mask, teacher_scores=teacher.to(scores.dtype))
        weights = self.curriculum.weights(step, batch, examples) if self.curriculum else None
        if weights is None:
            loss = loss_fn(scores, labels)
        else:
            info["curriculum_weight"] = float(weights.mean())
            # sample mode: each query's loss times its weight, averaged (the loss's weighted mean
            # normalises by the weights, so scale back by their mean); batch mode: batch loss x mean
            base = loss_fn(scores, labels, weights=weights) if self.curriculum.options.mode == "sample" else loss_fn(scores, labels)
            loss = base * weights.mean().to(base.dtype)
        self.last_info = info
        return loss

    def state_dict(self) -> dict[str, Any]:
        return {"negatives": self.negatives.state_dict(self.examples), "sampler": self.sampler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.negatives.load_state_dict(state["negatives"], self.examples)
        self.sampler.load_state_dict(state["sampler"])

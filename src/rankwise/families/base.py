"""The model-family protocol and its registry.

A *family* is everything rankwise does with one kind of model, in one object around the model:
training (turn a step's examples into a batch, the batch into ``scores[q, i]``, and backward),
retrieval or reranking (a first or second stage of :class:`~rankwise.index.rerank.Pipeline`),
teaching (scoring mined candidates), evaluation on a split, and save/load. The loop, the
evaluation, mining, the pipelines and the CLI ask ``family_of(model)``; none of them tests the
model's class.

A new family subclasses :class:`Family`, implements what its model can do (at least ``batch`` and
``forward_backward`` to train, ``score`` to rerank, teach and evaluate), and registers itself::

    @register_family(MyModel)
    class MyFamily(Family):
        name = "my-family"

``docs/model-families.md`` walks through a complete one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from rankwise.errors import ConfigError

LossOfScores = Callable[[torch.Tensor], tuple[torch.Tensor, dict[str, float]]]
Choose = Callable[[int, Any, np.random.Generator], Sequence[int]]


class Family:
    """What rankwise asks of a model. ``module`` holds the trained and checkpointed parameters."""

    name: ClassVar[str] = ""
    model_type: ClassVar[type] = object  # set by register_family
    embeds: ClassVar[bool] = False  # encodes texts on their own (dynamic re-mining, TAS/NGAME clusters)
    retrieves: ClassVar[bool] = False  # a first stage over a whole corpus
    data_parallel: ClassVar[bool] = False  # forward_backward shards the batch across processes
    embedding_terms: ClassVar[bool] = False  # trains Matryoshka / quantisation-aware terms on its embeddings

    def __init__(self, model: Any) -> None:
        self.model = model
        self.shard = None  # set by the loop in a torch.distributed run

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.label!r})"

    @property
    def label(self) -> str:
        """The model's name in tables and stage names."""
        return str(getattr(self.model, "name", "") or self.name)

    @property
    def module(self) -> nn.Module:
        return self.model

    # --- training -------------------------------------------------------------------------
    @contextmanager
    def training_lengths(self, config) -> Iterator[None]:
        """The config's token limits while training; the model's own afterwards."""
        yield

    def prepare_training(self, examples, config) -> None:
        """Before the first step (and before a resume restores state), with the training examples."""

    def begin_step(self, step: int, config) -> None:
        """Before each step's forward pass (e.g. a regulariser's warm-up reads the step)."""

    def negatives_per_query(self, config, uses_hard: bool) -> int:
        return config.negatives_per_query or (1 if uses_hard else 0)

    def batch(self, examples, rng: np.random.Generator, config, n_negatives: int, extra, choose: Choose | None):
        """The step's batch: a :class:`~rankwise.batch.LabelledBatch` with what the family scores."""
        raise ConfigError(f"a {self.name} model does not train in rankwise: its family has no batch()")

    def forward_backward(self, batch, loss_of_scores: LossOfScores, config, token_cache: dict, check):
        """Score the batch, ``loss_of_scores(scores)``, backward; returns ``(loss, info, TokenCount)``."""
        raise ConfigError(f"a {self.name} model does not train in rankwise: its family has no forward_backward()")

    def run_sides(self, sides, combine, loss_of_scores, config, check):
        """One step over ``sides`` (:func:`~rankwise.training.grad_cache.cached_forward_backward`) with
        the run's gradient caching, bf16 and data-parallel shard."""
        from rankwise.training.grad_cache import cached_forward_backward

        return cached_forward_backward(
            sides,
            combine,
            loss_of_scores,
            device_type=next(self.module.parameters()).device.type,
            cache_chunk=config.cache_chunk,
            bf16=config.bf16,
            check=check,
            shard=self.shard,
        )

    def param_groups(self) -> list[tuple[list[str], float]]:
        """Parameter names that train at another learning rate: ``(names, scale)``; a scale of -1
        means the config's ``head_lr_scale``. Default: none, one learning rate for all."""
        return []

    def lengths(self, texts: Sequence[str]) -> np.ndarray:
        """Token lengths of documents (length-bucketed batches)."""
        raise ConfigError(f"{self.name}: length bucketing is not available for this model family")

    def encode(self, texts: Sequence[str], side: str, **kw: Any) -> np.ndarray:
        """Embeddings of texts alone (families with ``embeds``)."""
        raise ConfigError(f"a {self.name} does not embed texts alone")

    # --- use: score, rerank, retrieve, teach, evaluate --------------------------------------
    def score(self, query: str, docs: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """One query's candidates' scores, higher is better."""
        raise ConfigError(f"a {self.name} does not score (query, document) pairs")

    def rank(self, query: str, docs: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """:meth:`score` in eval mode without gradients, as float32."""
        from rankwise.models.modes import evaluating

        with evaluating(self.module):
            return np.asarray(self.score(query, docs, batch_size=batch_size), dtype=np.float32)

    def first_stage(self, *, show_progress: bool = False):
        raise ConfigError(f"a {self.name} does not retrieve from a corpus: use it as a second stage (after bm25)")

    def second_stage(self, *, interpolate: float = 0.0, batch_size: int = 64):
        """Re-scores each query's candidates with :meth:`score`."""
        from rankwise.index.rerank import RerankStage

        return RerankStage(self, interpolate=interpolate, batch_size=batch_size, name=self.label)

    def teacher(self):
        """Scores mined candidates (false-negative filtering, distillation)."""
        from rankwise.negatives.teacher import FamilyTeacher

        return FamilyTeacher(self)

    def search(self, dataset, k: int, *, show_progress: bool = False, **_: Any) -> dict[str, dict[str, float]]:
        """The top ``k`` of each judged query: retrieved by this model, or BM25's reranked by it."""
        from rankwise.index.rerank import BM25Stage, Pipeline

        first = self.first_stage(show_progress=show_progress) if self.retrieves else BM25Stage()
        second = None if self.retrieves else self.second_stage()
        return Pipeline(first, second, depth=k).run(dataset, show_progress=show_progress).run

    def evaluate(self, dataset, k: int = 100, *, metrics: list[str] | None = None, **kw: Any):
        """:class:`~rankwise.metrics.model.EvalResult` of :meth:`search` on the split's qrels."""
        from rankwise.metrics.model import score_run

        return score_run(dataset, self.search(dataset, k, **kw), metrics)

    # --- save / load ----------------------------------------------------------------------
    @classmethod
    def fresh(cls, config) -> Any:
        """The model ``rankwise train`` starts from (``config.model``), with its own token limits."""
        raise ConfigError(f"the {cls.name} family does not build a model from a training config")

    def save(self, path: str | Path) -> None:
        self.model.save(path)

    @classmethod
    def recognises(cls, path: Path) -> bool:
        """Whether a folder holds this family's model, read from its files (never by running code)."""
        return False

    @classmethod
    def load(cls, path: str | Path | None, *, device: str | None = None) -> Any:
        return cls.model_type.load(path, device=device)


_BY_TYPE: list[tuple[type, type[Family]]] = []


def register_family(model_type: type, *, name: str | None = None) -> Callable[[type[Family]], type[Family]]:
    """Class decorator: ``family`` handles models of ``model_type`` (a later registration, e.g. a
    subclass's, wins)."""

    def wrap(family: type[Family]) -> type[Family]:
        from rankwise.registry import FAMILIES

        family.model_type = model_type
        if name is not None:
            family.name = name
        _BY_TYPE.insert(0, (model_type, family))
        FAMILIES.register(family.name)(family)
        return family

    return wrap


def find_family(model: Any) -> Family | None:
    """The family of ``model`` (a :class:`Family` passes through), or None for anything else."""
    if isinstance(model, Family):
        return model
    for model_type, family in _BY_TYPE:
        if isinstance(model, model_type):
            return family(model)
    return None


def family_of(model: Any) -> Family:
    """The family of ``model``; a clear error for an object no family handles."""
    found = find_family(model)
    if found is None:
        names = ", ".join(sorted(f.name for _, f in _BY_TYPE))
        raise ConfigError(
            f"no model family handles a {type(model).__name__} (registered: {names}); "
            "rankwise.register_family registers your own"
        )
    return found


def family_named(name: str) -> type[Family]:
    from rankwise.registry import FAMILIES

    return FAMILIES.entry(name).cls


def load_model(path: str | Path | None, *, device: str | None = None, default: str = "bi-encoder") -> Any:
    """The model a folder holds, by the first registered family that recognises its files; the
    ``default`` family's otherwise (a hub name, None for the packaged model, or a folder that no
    family claims: any sentence-transformers or transformers folder is a dual encoder's)."""
    if path is not None and Path(path).is_dir():
        for _, family in _BY_TYPE:
            if family.recognises(Path(path)):
                return family.load(path, device=device)
    return family_named(default).load(None if path is None else str(path), device=device)

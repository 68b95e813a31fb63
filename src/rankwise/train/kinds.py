"""Model kinds: the one seam between a model and the training loop.

A model kind's only job in training is to turn the step's examples into a batch and the batch
into the loss shape ``(scores, labels, mask)``; the loop does the rest (optimizer, schedule,
clipping, checkpoints, exact resume, device, logging, evaluation), and the plan the rest of the
data side (negatives, samplers, false-negative weights, curricula, teachers). Two kinds ship:

- :class:`DualEncoderKind`: queries and documents encoded apart, ``scores = q @ d.T`` over every
  document of the batch (in-batch negatives for free);
- :class:`CrossEncoderKind`: each query's candidate list scored pair by pair, ``scores[q, c]``;
- :class:`FeatureKind`: each query's list of feature vectors (LETOR), scored by a
  :class:`~rankwise.models.feature_scorer.FeatureScorer`;
- :class:`PreferenceKind`: each prompt's responses, scored by a language model's log-likelihood
  ratio against its reference (:class:`~rankwise.models.preference.PreferenceModel`).

A new kind (a feature scorer over LETOR lists, a language model's preference lists) subclasses
:class:`ModelKind`, implements :meth:`~ModelKind.batch` and :meth:`~ModelKind.forward_backward`,
and registers itself for its model class with :func:`register_model_kind`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from rankwise.data.examples import TrainExample
from rankwise.errors import ConfigError
from rankwise.models import BiEncoder, CrossEncoder
from rankwise.models.bi_encoder import TokenCount
from rankwise.models.feature_scorer import FeatureScorer, pad_features
from rankwise.models.preference import PreferenceModel
from rankwise.train.batching import build_inbatch, build_lists, pad_labels
from rankwise.train.distributed import Shard
from rankwise.train.grad_cache import LossOfScores, Side, cached_forward_backward, forward_backward

Choose = Callable[[int, TrainExample, np.random.Generator], Sequence[int]]


class ModelKind:
    """What the loop asks of a model. ``module`` holds the trained and checkpointed parameters."""

    name: ClassVar[str] = ""
    embeds: ClassVar[bool] = False  # encodes texts on their own (dynamic re-mining, TAS/NGAME clusters)
    data_parallel: ClassVar[bool] = False  # forward_backward shards the batch across processes

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.shard: Shard | None = None  # set by the loop in a torch.distributed run

    @property
    def module(self) -> nn.Module:
        return self.model.backbone

    @contextmanager
    def training_lengths(self, config) -> Iterator[None]:
        """The config's token limits while training; the model's own afterwards."""
        yield

    def negatives_per_query(self, config, uses_hard: bool) -> int:
        return config.negatives_per_query or (1 if uses_hard else 0)

    def batch(
        self,
        examples: Sequence[TrainExample],
        rng: np.random.Generator,
        config,
        n_negatives: int,
        extra: Sequence[Sequence[tuple[str, str]]] | None,
        choose: Choose | None,
    ) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def forward_backward(
        self,
        batch: Any,
        loss_of_scores: LossOfScores,
        config,
        token_cache: dict,
        check: Callable[[torch.Tensor], None],
    ) -> tuple[torch.Tensor, dict[str, float], TokenCount]:  # pragma: no cover - interface
        raise NotImplementedError

    def param_groups(self) -> list[tuple[list[str], float]]:
        """Parameter names that train at another learning rate: ``(names, scale)``; a scale of -1
        means the config's ``head_lr_scale``. Default: none, one learning rate for all."""
        return []

    def lengths(self, texts: Sequence[str]) -> np.ndarray:
        """Token lengths of documents (length-bucketed batches)."""
        raise ConfigError(f"{self.name}: length bucketing is not available for this model kind")


MODEL_KINDS: list[tuple[type, type[ModelKind]]] = []
_HEAD = ("classifier", "score", "bert.pooler", "roberta.pooler", "pooler")  # sequence-classification heads


def register_model_kind(model_type: type) -> Callable[[type[ModelKind]], type[ModelKind]]:
    def wrap(kind: type[ModelKind]) -> type[ModelKind]:
        MODEL_KINDS.insert(0, (model_type, kind))  # a later registration (a subclass's) wins
        return kind

    return wrap


def model_kind(model: Any) -> ModelKind:
    """The kind that trains ``model`` (a :class:`ModelKind` passes through)."""
    if isinstance(model, ModelKind):
        return model
    for model_type, kind in MODEL_KINDS:
        if isinstance(model, model_type):
            return kind(model)
    raise ConfigError(
        f"no model kind trains a {type(model).__name__}: pass a BiEncoder, a CrossEncoder, or a ModelKind "
        "(rankwise.train.kinds.register_model_kind registers your own)"
    )


@register_model_kind(BiEncoder)
class DualEncoderKind(ModelKind):
    name = "bi-encoder"
    embeds = True
    data_parallel = True

    @contextmanager
    def training_lengths(self, config) -> Iterator[None]:
        cfg = self.model.config
        kept = (cfg.query_max_length, cfg.doc_max_length)
        cfg.query_max_length = config.query_max_length or kept[0]
        cfg.doc_max_length = config.doc_max_length or kept[1]
        try:
            yield
        finally:
            cfg.query_max_length, cfg.doc_max_length = kept

    def batch(self, examples, rng, config, n_negatives, extra, choose):
        return build_inbatch(examples, rng, n_negatives, extra=extra, choose=choose, by_text=config.same_text_same_doc)

    def forward_backward(self, batch, loss_of_scores, config, token_cache, check):
        return forward_backward(
            self.model,
            batch.queries,
            batch.docs,
            loss_of_scores,
            cache_chunk=config.cache_chunk,
            chunk_tokens=config.chunk_tokens,
            token_cache=token_cache,
            bf16=config.bf16,
            check=check,
            shard=self.shard,
        )

    def lengths(self, texts):
        return np.array([len(x) for x in self.model.token_ids(texts, "doc")])


@register_model_kind(CrossEncoder)
class CrossEncoderKind(ModelKind):
    """Candidate lists of ``config.list_size`` (a positive and its negatives): ``batch_size x list_size``
    pairs a step, scored in chunks of ``cache_chunk`` pairs with gradient caching."""

    name = "cross-encoder"
    default_list_size = 8
    data_parallel = True

    @contextmanager
    def training_lengths(self, config) -> Iterator[None]:
        kept = self.model.config.max_length
        self.model.config.max_length = config.pair_max_length or kept
        try:
            yield
        finally:
            self.model.config.max_length = kept

    def negatives_per_query(self, config, uses_hard: bool) -> int:
        """Hard negatives a list: ``negatives_per_query`` when set, else the whole list's worth."""
        size = config.list_size or self.default_list_size
        return min(config.negatives_per_query or size - 1, size - 1)

    def batch(self, examples, rng, config, n_negatives, extra, choose):
        return build_lists(
            examples,
            rng,
            config.list_size or self.default_list_size,
            n_hard=n_negatives,
            extra=extra,
            choose=choose,
            by_text=config.same_text_same_doc,
        )

    def param_groups(self) -> list[tuple[list[str], float]]:
        """A fresh scoring head (pooler and classifier) learns at ``head_lr_scale`` x the lr."""
        if not getattr(self.model, "fresh_head", False):
            return []
        return [([n for n, _ in self.module.named_parameters() if n.startswith(_HEAD)], -1.0)]

    def forward_backward(self, batch, loss_of_scores, config, token_cache, check):
        pairs = batch.pairs()
        mask = batch.mask.to(self.model.device)

        def combine(flat: torch.Tensor) -> torch.Tensor:
            return flat.new_zeros(mask.shape).masked_scatter(mask, flat)  # row-major, as pairs() lists them

        return cached_forward_backward(
            [
                Side(
                    lambda chunk: self.model.score_counted(
                        chunk, token_cache=token_cache, chunk_tokens=config.chunk_tokens
                    ),
                    pairs,
                )
            ],
            combine,
            loss_of_scores,
            device_type=self.model.device.type,
            cache_chunk=config.cache_chunk,
            bf16=config.bf16,
            check=check,
            shard=self.shard,
        )

    def lengths(self, texts):
        return np.array([len(x) for x in self.model.tokenizer(list(texts), truncation=True)["input_ids"]])


@dataclass
class FeatureBatch:
    """Padded feature lists: ``x [Q, L, F]``, ``labels`` and ``mask`` [Q, L]."""

    x: torch.Tensor
    labels: torch.Tensor
    mask: torch.Tensor
    hard: list[list[tuple[int, int]]]  # no mined negatives: empty per query (curricula and weights see none)
    positive: list[int]
    positive_index: list[int]


class OwnListKind(ModelKind):
    """Kinds whose examples carry their own lists (features, responses, clicks): no mined
    negatives; a list longer than ``list_size`` (when set) is sampled down each step."""

    @property
    def module(self) -> nn.Module:
        return self.model

    def negatives_per_query(self, config, uses_hard: bool) -> int:
        return 0

    @staticmethod
    def rows(n: int, config, rng: np.random.Generator) -> np.ndarray:
        if config.list_size and n > config.list_size:
            return np.sort(rng.choice(n, size=config.list_size, replace=False))
        return np.arange(n)


@register_model_kind(FeatureScorer)
class FeatureKind(OwnListKind):
    """Learning to rank over feature vectors: a step is ``batch_size`` queries' whole lists (or a
    random ``list_size`` of each list's rows when a list is longer)."""

    name = "feature-scorer"

    def batch(self, examples, rng, config, n_negatives, extra, choose):
        picks = [self.rows(len(ex.labels), config, rng) for ex in examples]
        x, _ = pad_features([torch.as_tensor(ex.features[r], dtype=torch.float32) for ex, r in zip(examples, picks)])
        labels, mask = pad_labels([ex.labels[r].tolist() for ex, r in zip(examples, picks)])
        n = len(examples)
        return FeatureBatch(x, labels, mask, [[] for _ in range(n)], [0] * n, [0] * n)

    def forward_backward(self, batch, loss_of_scores, config, token_cache, check):
        device = self.model.device
        mask = batch.mask.to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.bf16):
            scores = self.model(batch.x.to(device), mask)
        loss, info = loss_of_scores(scores.float())
        check(loss)
        loss.backward()
        return loss.detach(), info, TokenCount(int(mask.sum()), mask.numel())


@dataclass
class PreferenceBatch:
    prompts: list[str]
    responses: list[list[str]]
    labels: torch.Tensor
    mask: torch.Tensor
    hard: list[list[tuple[int, int]]]
    positive: list[int]
    positive_index: list[int]

    def pairs(self) -> list[tuple[str, str]]:
        return [(p, r) for p, rs in zip(self.prompts, self.responses) for r in rs]


@register_model_kind(PreferenceModel)
class PreferenceKind(OwnListKind):
    """A step is ``batch_size`` prompts' response lists (a random ``list_size`` of a longer list)."""

    name = "preference"

    @property
    def module(self) -> nn.Module:
        return self.model.policy

    def batch(self, examples, rng, config, n_negatives, extra, choose):
        picks = [self.rows(len(ex.responses), config, rng) for ex in examples]
        labels, mask = pad_labels([[ex.labels[i] for i in r] for ex, r in zip(examples, picks)])
        k = len(examples)
        responses = [[ex.responses[i] for i in r] for ex, r in zip(examples, picks)]
        return PreferenceBatch(
            [ex.prompt for ex in examples], responses, labels, mask, [[] for _ in range(k)], [0] * k, [0] * k
        )

    def forward_backward(self, batch, loss_of_scores, config, token_cache, check):
        mask = batch.mask.to(self.model.device)
        with torch.autocast(self.model.device.type, dtype=torch.bfloat16, enabled=config.bf16):
            flat = self.model.scores(batch.pairs())
        scores = flat.float().new_zeros(mask.shape).masked_scatter(mask, flat.float())
        loss, info = loss_of_scores(scores)
        check(loss)
        loss.backward()
        return loss.detach(), info, TokenCount(int(mask.sum()), mask.numel())

"""Train the same batches elsewhere: the example indices rankwise will draw, and a batch sampler
that replays them in sentence-transformers' ``SentenceTransformerTrainer`` (its
``batch_sampler`` argument), for side-by-side comparisons on identical work."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from rankwise.data.examples import TrainExample
from rankwise.training.config import TrainConfig


def batch_indices(config: TrainConfig, examples: Sequence[TrainExample], steps: int | None = None) -> list[list[int]]:
    """The indices into ``examples`` of each batch rankwise draws for ``config`` (samplers that
    need no model: random, nodup)."""
    from rankwise.training.plan import Plan

    plan = Plan(config, list(examples))
    if plan.sampler.needs_embeddings(0):
        raise ValueError(
            f"batching {config.batching!r} depends on the model's embeddings; its batches cannot be drawn ahead"
        )
    return [[int(i) for i in plan.sampler.indices(s, plan.examples)] for s in range(steps or config.steps)]


class ReplayBatches:
    """Pass as ``batch_sampler=`` to ``SentenceTransformerTrainingArguments``: the trainer calls it
    with the dataset and gets back a sampler yielding the given index lists in order."""

    def __init__(self, batches: list[list[int]]) -> None:
        self.batches = batches

    def __call__(self, dataset=None, **kwargs) -> ReplayBatches:
        return self

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)

    def set_epoch(self, epoch: int) -> None:  # the trainer calls it each epoch; the order is fixed
        pass

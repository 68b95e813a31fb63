"""Training: configuration, batch samplers, in-batch batches, the loop with checkpoints and exact resume.

``rw.train`` is :func:`rankwise.training.loop.train`, a plain function."""

from rankwise.training.batching import InBatch, build_inbatch, pad_lists
from rankwise.training.config import TrainConfig, load_config
from rankwise.training.loop import StepLog, TrainResult, latest_checkpoint, train

__all__ = [
    "InBatch",
    "build_inbatch",
    "pad_lists",
    "TrainConfig",
    "load_config",
    "StepLog",
    "TrainResult",
    "latest_checkpoint",
    "train",
]

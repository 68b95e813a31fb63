"""Training: configuration, in-batch batches, the loop with checkpoints and exact resume."""

from rankwise.train.batching import InBatch, build_inbatch, pad_lists
from rankwise.train.config import TrainConfig, load_config
from rankwise.train.loop import StepLog, TrainResult, latest_checkpoint, train

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

"""Training: configuration, batch samplers, in-batch batches, the loop with checkpoints and exact resume.

``rankwise.train`` is both this package and the training call: importing a submodule makes
Python set the package as the attribute ``rankwise.train``, which would hide the function
``rw.train``, so calling the package calls :func:`rankwise.train.loop.train`.
"""

import sys
import types

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


class _CallablePackage(types.ModuleType):
    def __call__(self, *args, **kwargs) -> TrainResult:
        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage

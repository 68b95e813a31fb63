"""Experiment tracking: every training run writes TensorBoard event files (``RUN/tensorboard``)
and, when ``mlflow`` is installed, logs to the active MLflow tracking URI as well — the two
places sentence-transformers users look for curves."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class Tracker:
    def __init__(
        self, out_dir: str | Path, *, run_name: str, params: Mapping[str, Any] | None = None, mlflow: bool | None = None
    ) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(Path(out_dir) / "tensorboard"))
        if params:
            self.writer.add_text("config", "\n".join(f"    {k} = {v!r}" for k, v in params.items()))
        self.mlflow = None
        use_mlflow = importlib.util.find_spec("mlflow") is not None if mlflow is None else mlflow
        if use_mlflow:
            import mlflow as mlf

            self.mlflow = mlf
            mlf.start_run(run_name=run_name)
            if params:
                mlf.log_params({k: v for k, v in params.items() if v is not None})

    def log(self, step: int, values: Mapping[str, float]) -> None:
        for name, value in values.items():
            self.writer.add_scalar(name, value, step)
        if self.mlflow is not None:
            self.mlflow.log_metrics({k.replace("@", "_at_"): float(v) for k, v in values.items()}, step=step)

    def close(self) -> None:
        self.writer.close()
        if self.mlflow is not None:
            self.mlflow.end_run()

"""The run folder: the one object every job writes through.

A run folder holds ``config.toml`` (enough to re-run it), ``metrics.json``, the TREC run file
(``run.trec``), the model when one was trained (``model/``), its checkpoints while training and
the report. It never mixes two runs, and once it holds a model or a checkpoint nothing deletes it:
a failure or an interrupt after training keeps what was made.
"""

from __future__ import annotations

import platform
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from rankwise.errors import RankwiseError
from rankwise.io import check_writable, write_json, write_text

MODEL = "model"
CHECKPOINTS = "checkpoints"
CONFIG = "config.toml"


def portable(path: str | Path | None) -> str | None:
    """A path stored in config.toml resolves from anywhere (absolute); other names stay as given."""
    if path is None:
        return None
    return str(Path(path).resolve()) if Path(path).exists() else str(path)


@dataclass
class RunFolder:
    path: Path

    @classmethod
    @contextmanager
    def open(cls, path: str | Path, *, resume: bool = False, overwrite: bool = False) -> Iterator[RunFolder]:
        """An existing non-empty folder is refused unless ``resume`` (continue its training) or
        ``overwrite`` (cleared first). Writability is checked before any work. A folder this call
        created is removed again if the run fails before it holds a checkpoint or a model."""
        if resume and overwrite:
            raise RankwiseError("resume=True continues a run and overwrite=True clears it: give one of them")
        path = Path(path)
        existed = path.exists()
        if existed and not path.is_dir():
            raise RankwiseError(f"run folder {path} is a file")
        if existed and any(path.iterdir()) and not resume:
            if not overwrite:
                raise RankwiseError(
                    f"run folder {path} is not empty: overwrite=True clears it first, resume=True continues its training"
                )
            for child in path.iterdir():
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        check_writable(path)
        folder = cls(path)
        try:
            yield folder
        except BaseException:
            if not existed and not folder.holds_work():
                shutil.rmtree(path, ignore_errors=True)
            raise

    def holds_work(self) -> bool:
        """A model or a checkpoint: what a failure must never delete."""
        return (self.path / MODEL).exists() or (self.path / CHECKPOINTS).exists()

    @property
    def model_dir(self) -> Path:
        return self.path / MODEL

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def write_config(self, run: dict[str, Any], train: Any = None, extra: dict[str, Any] | None = None) -> None:
        """``config.toml``: the command's ``[run]`` table, the training options, the environment."""
        import torch

        from rankwise import __version__

        doc: dict[str, Any] = {"run": {k: v for k, v in run.items() if v is not None}}
        if train is not None:
            doc["train"] = train.to_toml_dict()
        doc.update(extra or {})
        doc["environment"] = {"rankwise": __version__, "torch": torch.__version__, "python": platform.python_version()}
        write_text(self.path / CONFIG, tomli_w.dumps(doc))

    def write_json(self, name: str, obj: Any) -> Path:
        write_json(self.path / name, obj)
        return self.path / name

    def write_run(self, name: str, run: dict[str, dict[str, float]], tag: str) -> Path:
        from rankwise.data import write_run

        write_run(self.path / name, run, tag=tag)
        return self.path / name

    def save_model(self, model: Any) -> Path:
        from rankwise.families import family_of

        family_of(model).save(self.model_dir)
        return self.model_dir

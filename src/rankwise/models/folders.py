"""Which family's model a folder holds, read from its files (never by running code from it)."""

from __future__ import annotations

import json
from pathlib import Path


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def is_cross_encoder_folder(path: Path) -> bool:
    """A transformers sequence-classification folder: ``config.json`` names a ``*ForSequenceClassification``,
    or a peft adapter folder for one (``adapter_config.json`` with ``task_type`` ``SEQ_CLS``)."""
    path = Path(path)
    if (path / "config.json").is_file():
        cfg = _read_json(path / "config.json")
        return any(str(a).endswith("ForSequenceClassification") for a in cfg.get("architectures") or [])
    return is_cross_encoder_adapter(path)


def is_cross_encoder_adapter(path: Path) -> bool:
    """A LoRA adapter over a sequence classifier, saved without the base model's weights."""
    adapter = Path(path) / "adapter_config.json"
    return adapter.is_file() and _read_json(adapter).get("task_type") == "SEQ_CLS"


def folder_kind(path: Path) -> str:
    """``cross-encoder`` for a folder with a scoring head, else ``bi-encoder``."""
    return "cross-encoder" if is_cross_encoder_folder(path) else "bi-encoder"

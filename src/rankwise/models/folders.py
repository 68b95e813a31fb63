"""Which family's model a folder holds, read from its files (never by running code from it)."""

from __future__ import annotations

import json
from pathlib import Path


def is_cross_encoder_folder(path: Path) -> bool:
    """A transformers sequence-classification folder: ``config.json`` names a ``*ForSequenceClassification``."""
    cfg_path = Path(path) / "config.json"
    if not cfg_path.is_file():
        return False
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return any(str(a).endswith("ForSequenceClassification") for a in cfg.get("architectures") or [])


def folder_kind(path: Path) -> str:
    """``cross-encoder`` for a folder with a scoring head, else ``bi-encoder``."""
    return "cross-encoder" if is_cross_encoder_folder(path) else "bi-encoder"

"""Cross-encoder (reranker): a transformers backbone reads a (query, document) pair and a head scores it.

Starts from any encoder folder (the packaged all-MiniLM-L6-v2 by default) with a fresh, seeded
one-output head, or from a cross-encoder folder with its head. ``save`` writes a transformers
sequence-classification folder that ``sentence_transformers.CrossEncoder(path)`` loads with the
same scores: the raw logit (the folder names ``Identity`` as the activation, so sentence-transformers
adds no sigmoid) and the same pair truncation (``longest_first`` at ``max_length`` tokens).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rankwise.errors import RankwiseError
from rankwise.io import atomic_path
from rankwise.models.bi_encoder import TokenCount, _read_st_config, resolve_source
from rankwise.models.chunks import length_chunks, restore_order
from rankwise.models.folders import is_cross_encoder_adapter, is_cross_encoder_folder
from rankwise.models.modes import evaluating

log = logging.getLogger(__name__)

Pair = tuple[str, str]
IDENTITY = "torch.nn.modules.linear.Identity"


@dataclass
class CrossEncoderConfig:
    max_length: int = 256  # tokens of the whole pair, special tokens included


class CrossEncoder(nn.Module):
    """Scores (query, document) pairs jointly; the second stage of a search pipeline.

    ``CrossEncoder()`` starts from the packaged all-MiniLM-L6-v2 with a fresh head (seeded by
    ``seed``); ``CrossEncoder(folder)`` from any encoder or cross-encoder folder or hub name.
    :meth:`load` reads a trained reranker and refuses a folder that has no scoring head.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        max_length: int | None = None,
        device: str | torch.device | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        from rankwise.device import resolve_device

        hf_logging.disable_progress_bar()
        path, self.name = resolve_source(model)
        backbone_path, length = path, None
        if (path / "modules.json").is_file() and not is_cross_encoder_folder(path):  # a sentence-transformers encoder
            backbone_path, enc, _ = _read_st_config(path)  # a Dense projection has no place in a reranker
            length = enc.doc_max_length
        if not (backbone_path / "config.json").is_file() and not is_cross_encoder_adapter(backbone_path):
            raise RankwiseError(f"cannot load model {str(model)!r}: {backbone_path} has no config.json")
        self.fresh_head = not is_cross_encoder_folder(backbone_path)
        own = backbone_path / "rankwise.json"
        if own.is_file():
            length = json.loads(own.read_text(encoding="utf-8")).get("max_length", length)
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # the "newly initialized head" warning: said once, below, in our words
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(backbone_path))
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)  # the fresh head's initial weights
                backbone = AutoModelForSequenceClassification.from_pretrained(str(backbone_path), num_labels=1)
        except (OSError, ValueError) as exc:
            raise RankwiseError(f"cannot load model {str(model)!r}: {exc}".splitlines()[0]) from None
        finally:
            hf_logging.set_verbosity(verbosity)
        if backbone.config.num_labels != 1:
            raise RankwiseError(f"{path}: a reranker has one output, this model has {backbone.config.num_labels}")
        if self.fresh_head:
            log.info("%s: an encoder without a scoring head; the head starts fresh (seed %d)", self.name, seed)
        limit = max_length or length or min(int(getattr(tokenizer, "model_max_length", 512) or 512), 512)
        self.config = CrossEncoderConfig(max_length=int(limit))
        self.tokenizer = tokenizer
        self.backbone = backbone.to(resolve_device(device)).eval()

    @classmethod
    def load(
        cls, path: str | Path, *, max_length: int | None = None, device: str | torch.device | None = None
    ) -> CrossEncoder:
        """A trained reranker folder (``save``'s, or any sentence-transformers cross-encoder). A
        bi-encoder folder is refused: it has no scoring head, so its scores would mean nothing."""
        p = Path(path)
        if p.is_dir() and not is_cross_encoder_folder(p):
            what = "a bi-encoder (sentence-transformers) folder" if (p / "modules.json").is_file() else "an encoder"
            raise RankwiseError(
                f"reranker {path}: {what} without a scoring head, not a cross-encoder; train one with "
                "`rankwise train --kind cross-encoder`, or start a fresh one with rankwise.CrossEncoder(path)"
            )
        return cls(path, max_length=max_length, device=device)

    @property
    def device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    # ---------------------------------------------------------------- scoring
    def token_ids(self, pairs: Sequence[Pair], cache: dict | None = None) -> list[dict[str, list[int]]]:
        """Each pair's encoding (input ids, token types), truncated as sentence-transformers does."""
        missing = list(dict.fromkeys(p for p in pairs if cache is None or p not in cache))
        found: dict[Pair, dict[str, list[int]]] = {}
        if missing:
            enc = self.tokenizer(
                [q for q, _ in missing],
                [d for _, d in missing],
                truncation="longest_first",
                max_length=self.config.max_length,
            )
            keys = [k for k in ("input_ids", "token_type_ids") if k in enc]
            for n, p in enumerate(missing):
                found[p] = {k: enc[k][n] for k in keys}
            if cache is not None:
                cache.update(found)
        return [cache[p] if cache is not None else found[p] for p in pairs]

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.backbone(**batch).logits[:, 0]

    def score_counted(
        self, pairs: Sequence[Pair], *, token_cache: dict | None = None, chunk_tokens: int | None = None
    ) -> tuple[torch.Tensor, TokenCount]:
        """Scores with gradients (training), in input order, and the call's (real, padded) token counts.
        ``chunk_tokens``: pairs sorted by length and scored in chunks of at most this many padded tokens."""
        enc = self.token_ids(pairs, token_cache)
        lengths = [len(e["input_ids"]) for e in enc]
        chunks = length_chunks(lengths, chunk_tokens)
        parts, padded = [], 0
        for chunk in chunks:
            batch = self.tokenizer.pad([enc[i] for i in chunk], return_tensors="pt")
            padded += batch["input_ids"].numel()
            parts.append(self({k: v.to(self.device) for k, v in batch.items()}))
        out = torch.cat(parts) if len(parts) > 1 else parts[0]
        return restore_order(out, chunks, chunk_tokens), TokenCount(sum(lengths), padded)

    def predict(self, pairs: Sequence[Pair] | Pair, *, batch_size: int = 32) -> np.ndarray:
        """float32 scores (raw logits) of (query, document) pairs, in input order; one pair
        ``(query, document)`` gives its score alone, as sentence-transformers does."""
        if len(pairs) == 2 and all(isinstance(x, str) for x in pairs):
            return self.predict([tuple(pairs)], batch_size=batch_size)[0]
        out = np.empty(len(pairs), dtype=np.float32)
        if len(pairs):
            enc = self.token_ids(list(pairs))
            order = np.argsort([-len(e["input_ids"]) for e in enc], kind="stable")
            with evaluating(self):
                for start in range(0, len(order), batch_size):
                    idx = order[start : start + batch_size]
                    batch = self.tokenizer.pad([enc[i] for i in idx], return_tensors="pt")
                    out[idx] = self({k: v.to(self.device) for k, v in batch.items()}).float().cpu().numpy()
        return out

    def rank(self, query: str, docs: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        """Scores of ``docs`` for ``query``."""
        return self.predict([(query, d) for d in docs], batch_size=batch_size)

    # ----------------------------------------------------------------- saving
    def __repr__(self) -> str:
        """A summary, not the torch module tree (``model.backbone`` prints that)."""
        head = "fresh head" if self.fresh_head else "trained head"
        return f"CrossEncoder({self.name!r}, max_length={self.config.max_length}, {head})"

    def save(self, path: str | Path) -> Path:
        """Write a folder that sentence-transformers' ``CrossEncoder`` loads with the same scores: a
        transformers sequence-classification folder, or, for a model training a LoRA adapter
        (``save=adapter``), the adapter with sentence-transformers' module files (its loader puts the
        adapter on the base model the adapter names)."""
        path = Path(path)
        cfg = self.backbone.config
        cfg.sentence_transformers = {"activation_fn": IDENTITY}  # raw logits, as predict() returns
        self.tokenizer.model_max_length = self.config.max_length
        with atomic_path(path, is_dir=True) as tmp:
            self.backbone.save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)
            if (tmp / "adapter_config.json").is_file():
                _write_st_cross_encoder_files(tmp)
            (tmp / "rankwise.json").write_text(
                json.dumps({"kind": "cross-encoder", "max_length": self.config.max_length, "base_model": self.name})
            )
        return path


def _write_st_cross_encoder_files(folder: Path) -> None:
    """sentence-transformers' module files for an adapter folder: with no ``config.json`` there, its
    ``CrossEncoder`` reads these instead and loads the base model the adapter names."""
    module = {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.base.modules.transformer.Transformer"}
    (folder / "modules.json").write_text(json.dumps([module], indent=2))
    task = {
        "transformer_task": "sequence-classification",
        "modality_config": {"text": {"method": "forward", "method_output_name": "logits"}},
        "module_output_name": "scores",
    }
    (folder / "sentence_bert_config.json").write_text(json.dumps(task, indent=2))
    st = {"activation_fn": IDENTITY, "model_type": "CrossEncoder", "prompts": {}}
    (folder / "config_sentence_transformers.json").write_text(json.dumps(st, indent=2))

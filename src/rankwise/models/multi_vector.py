"""Multi-vector (late-interaction) encoder: ColBERT, with XTR's training objective as an option.

ColBERT (Khattab and Zaharia, SIGIR 2020; v2, Santhanam et al., NAACL 2022): every token's output
is projected to 128 dimensions (a fresh linear layer without bias) and L2-normalised; relevance is
MaxSim, ``s(q, d) = sum_i max_j q_i . d_j``. Queries are padded to a fixed 32 tokens with [MASK]
tokens (query augmentation: the encoder does not attend to them, but they are scored, so they
learn to re-weight the query); punctuation tokens of documents are skipped, as ColBERT does.

XTR (Lee et al., NeurIPS 2023): in training, each query token keeps only its top ``k`` document
tokens across the whole batch; a document's score is the sum over query tokens of their best
*retrieved* token of that document, divided by the number of query tokens that retrieved any of
its tokens, so the model learns to put the right tokens at the top of a token index.

``save`` writes a sentence-transformers ``MultiVectorEncoder`` folder (Transformer with fixed query
expansion, Dense, MultiVectorMask with the punctuation skiplist, Normalize), which gives the same
token vectors and MaxSim scores.
"""

from __future__ import annotations

import json
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rankwise.errors import RankwiseError
from rankwise.io import atomic_path
from rankwise.models.bi_encoder import Side, TokenCount, pretrained, resolve_source
from rankwise.models.chunks import length_chunks
from rankwise.models.modes import evaluating

_T = "sentence_transformers.base.modules"
_TYPES = [
    ("", f"{_T}.transformer.Transformer"),
    ("1_Dense", f"{_T}.dense.Dense"),
    ("2_MultiVectorMask", "sentence_transformers.multi_vector_encoder.modules.multi_vector_mask.MultiVectorMask"),
    ("3_Normalize", f"{_T}.normalize.Normalize"),
]
_TOKENS = {"module_input_name": "token_embeddings", "module_output_name": "token_embeddings"}


@dataclass
class MultiVectorConfig:
    query_length: int = 32  # queries padded (with [MASK]) or cut to exactly this many tokens
    doc_max_length: int = 180  # ColBERTv2's document length
    dim: int = 128
    skip_punctuation: bool = True
    scoring: str = "colbert"  # training scores: "colbert" (MaxSim) or "xtr" (the batch's top-k tokens)
    xtr_k: int = 256  # XTR: document tokens each query token keeps across the batch


def maxsim(queries: torch.Tensor, docs: torch.Tensor) -> torch.Tensor:
    """``[nq, nd]`` MaxSim of zero-padded token matrices ``[nq, Tq, dim]`` and ``[nd, Td, dim]``
    (an all-zero row is padding; real token vectors are normalised, never zero).

    >>> q = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    >>> d = torch.tensor([[[0.6, 0.8], [0.0, 0.0]], [[-1.0, 0.0], [0.0, -1.0]]])
    >>> [round(x, 4) for x in maxsim(q, d)[0].tolist()]  # d1: each query token's best similarity is 0
    [1.4, 0.0]
    """
    sims = torch.einsum("qid,njd->qnij", queries, docs)
    pad = (docs.abs().sum(-1) == 0)[None, :, None, :]
    best = sims.masked_fill(pad, float("-inf")).amax(-1)
    real = (queries.abs().sum(-1) > 0)[:, None, :]
    return (best.clamp_min(-1e30) * real).sum(-1)


def xtr_scores(queries: torch.Tensor, docs: torch.Tensor, k: int) -> torch.Tensor:
    """XTR's training scores: each query token keeps its top ``k`` document tokens of the batch;
    ``s(q, d) = sum_i max_{j retrieved} q_i . d_j / Z`` with ``Z`` the query tokens that retrieved
    any token of ``d`` (a document none retrieved scores 0).

    >>> q = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    >>> d = torch.tensor([[[0.6, 0.8]], [[1.0, 0.0]]])
    >>> xtr_scores(q, d, k=1).tolist()  # token 1 retrieves d0 (0.8), token 0 retrieves d1 (1.0)
    [[0.800000011920929, 1.0]]
    """
    nq, tq, _ = queries.shape
    nd, td, _ = docs.shape
    sims = torch.einsum("qid,njd->qinj", queries, docs).masked_fill(
        (docs.abs().sum(-1) == 0)[None, None], float("-inf")
    )
    flat = sims.reshape(nq, tq, nd * td)
    kth = flat.topk(min(k, nd * td), dim=-1).values[..., -1:]
    kept = (flat >= kth) & torch.isfinite(flat)
    retrieved = torch.where(kept, flat, torch.zeros_like(flat)).reshape(nq, tq, nd, td)
    hit = kept.reshape(nq, tq, nd, td).any(-1)
    best = torch.where(hit, retrieved.masked_fill(~kept.reshape(nq, tq, nd, td), float("-inf")).amax(-1), 0.0)
    real = (queries.abs().sum(-1) > 0)[:, :, None]
    z = (hit & real).sum(1).clamp_min(1)
    return (best * real).sum(1) / z


def is_multi_vector_folder(path: Path) -> bool:
    cfg = Path(path) / "config_sentence_transformers.json"
    try:
        return json.loads(cfg.read_text()).get("model_type") == "MultiVectorEncoder"
    except (OSError, ValueError):
        return False


def _read_config(path: Path, cfg: MultiVectorConfig) -> MultiVectorConfig:
    st = json.loads((path / "sentence_bert_config.json").read_text())
    cfg.query_length = int((st.get("query_expansion") or {}).get("length") or cfg.query_length)
    cfg.doc_max_length = int(st.get("max_seq_length") or cfg.doc_max_length)
    mask = json.loads((path / "2_MultiVectorMask" / "config.json").read_text())
    cfg.skip_punctuation = bool(mask.get("skiplist_words"))
    own = path / "rankwise.json"
    if own.is_file():
        extra = json.loads(own.read_text())
        cfg.scoring, cfg.xtr_k = extra.get("scoring", cfg.scoring), int(extra.get("xtr_k", cfg.xtr_k))
    cfg.dim = json.loads((path / "1_Dense" / "config.json").read_text())["out_features"]
    return cfg


def _read(model, seed: int):
    """Encoder, projection, tokenizer, config and label of what ``model`` names."""
    from transformers import AutoModel, AutoTokenizer

    path, label = resolve_source(model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        encoder = pretrained(AutoModel, path)
    except (OSError, ValueError) as exc:
        raise RankwiseError(f"cannot load model {model!r}: {exc}") from None
    cfg = MultiVectorConfig()
    if is_multi_vector_folder(path):
        from safetensors.torch import load_file

        cfg = _read_config(path, cfg)
        weight = load_file(str(path / "1_Dense" / "model.safetensors"))["linear.weight"]
    else:  # a fresh projection: nn.Linear's own initialisation, drawn from the seed
        bound = 1 / encoder.config.hidden_size**0.5
        gen = torch.Generator().manual_seed(seed)
        weight = torch.empty(cfg.dim, encoder.config.hidden_size).uniform_(-bound, bound, generator=gen)
    projection = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    projection.weight.data.copy_(weight)
    return encoder, projection, tokenizer, cfg, label


class MultiVectorEncoder(nn.Module):
    """ColBERT over a transformers backbone: ``encoder`` then ``projection``."""

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        doc_max_length: int | None = None,
        scoring: str | None = None,
        xtr_k: int | None = None,
        seed: int = 0,
        device: str | torch.device | None = None,
    ) -> None:
        """``model``: None for the packaged all-MiniLM-L6-v2 with a fresh projection (drawn from
        ``seed``), a sentence-transformers MultiVectorEncoder folder, any encoder folder, or a hub name."""
        from rankwise.device import resolve_device

        super().__init__()
        self.encoder, self.projection, self.tokenizer, self.config, self.name = _read(model, seed)
        c = self.config
        c.doc_max_length, c.scoring, c.xtr_k = (
            doc_max_length or c.doc_max_length,
            scoring or c.scoring,
            xtr_k or c.xtr_k,
        )
        if c.scoring not in ("colbert", "xtr"):
            raise RankwiseError(f"scoring {c.scoring!r}: colbert or xtr")
        punct = [self.tokenizer.convert_tokens_to_ids(ch) for ch in string.punctuation]
        skip = torch.tensor([i for i in punct if i != self.tokenizer.unk_token_id])
        self.register_buffer("skip_ids", skip, persistent=False)
        self.eval().to(resolve_device(device))

    @classmethod
    def load(cls, name_or_path: str | Path | None = None, **options) -> MultiVectorEncoder:
        """The same as ``MultiVectorEncoder(name_or_path, **options)``."""
        return cls(name_or_path, **options)

    @property
    def device(self) -> torch.device:
        return next(self.encoder.parameters()).device

    # --------------------------------------------------------------- encoding
    def token_ids(self, texts: Sequence[str], side: Side, cache: dict | None = None) -> list[list[int]]:
        limit = self.config.query_length if side == "query" else self.config.doc_max_length
        missing = [t for t in dict.fromkeys(texts) if cache is None or (side, t) not in cache]
        found = (
            dict(zip(missing, self.tokenizer(missing, truncation=True, max_length=limit)["input_ids"]))
            if missing
            else {}
        )
        if cache is not None:
            cache.update({(side, t): x for t, x in found.items()})
        return [found[t] if t in found else cache[(side, t)] for t in texts]

    def _tokens(self, ids: list[list[int]], side: Side) -> torch.Tensor:
        """Zero-padded, normalised token vectors ``[n, T, dim]`` of one chunk, with a graph: queries
        at exactly ``query_length`` (expansion positions as [MASK], scored, not attended to)."""
        width = self.config.query_length if side == "query" else max(len(x) for x in ids)
        batch = self.tokenizer.pad({"input_ids": ids}, padding="max_length", max_length=width, return_tensors="pt")
        batch = {k: v.to(self.device) for k, v in batch.items()}
        keep = batch["attention_mask"].bool()
        if side == "query":
            batch["input_ids"] = batch["input_ids"].masked_fill(~keep, self.tokenizer.mask_token_id)
            keep = torch.ones_like(keep)
        elif self.config.skip_punctuation:
            keep &= ~torch.isin(batch["input_ids"], self.skip_ids)
        hidden = self.encoder(**batch).last_hidden_state
        vectors = nn.functional.normalize(self.projection(hidden), dim=-1)
        return vectors * keep.unsqueeze(-1).to(vectors.dtype)

    def embed_counted(
        self, texts: Sequence[str], side: Side, *, token_cache: dict | None = None, chunk_tokens: int | None = None
    ) -> tuple[torch.Tensor, TokenCount]:
        """``[n, T, dim]`` token vectors with gradients (documents zero-padded to ``doc_max_length``,
        so chunks of a gradient-cached batch stack), in length-sorted chunks of at most
        ``chunk_tokens`` padded tokens."""
        ids = self.token_ids(texts, side, token_cache)
        lengths = [len(x) for x in ids]
        width = self.config.query_length if side == "query" else self.config.doc_max_length
        padded = 0
        parts = []
        for chunk in length_chunks(lengths, chunk_tokens):
            part = self._tokens([ids[i] for i in chunk], side)
            padded += part.shape[0] * part.shape[1]
            parts.append((chunk, nn.functional.pad(part, (0, 0, 0, width - part.shape[1]))))
        out = torch.cat([p for _, p in parts])
        order = torch.tensor([i for c, _ in parts for i in c], device=out.device)
        return out[torch.argsort(order)], TokenCount(sum(lengths), padded)

    def scores(self, queries: torch.Tensor, docs: torch.Tensor) -> torch.Tensor:
        """Training scores ``[nq, nd]``: MaxSim, or XTR's with ``scoring="xtr"``."""
        if self.config.scoring == "xtr":
            return xtr_scores(queries, docs, self.config.xtr_k)
        return maxsim(queries, docs)

    def encode(
        self, texts: Sequence[str] | str, side: Side = "doc", *, batch_size: int = 32, progress=None
    ) -> list[np.ndarray]:
        """Each text's float32 token vectors ``[n_tokens, dim]`` (padding and skipped tokens dropped)."""
        if isinstance(texts, str):
            return self.encode([texts], side, batch_size=batch_size)
        ids = self.token_ids(texts, side)
        order = np.argsort([-len(x) for x in ids], kind="stable")
        out: list[np.ndarray] = [np.empty((0, self.config.dim), np.float32)] * len(ids)
        with evaluating(self), torch.no_grad():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                vectors = self._tokens([ids[i] for i in idx], side).float().cpu().numpy()
                for row, i in zip(vectors, idx):
                    out[i] = row[np.abs(row).sum(-1) > 0]
                if progress:
                    progress(len(idx))
        return out

    def score(self, queries: Sequence[str] | str, documents: Sequence[str] | str) -> np.ndarray:
        """The ``[queries x documents]`` MaxSim matrix (sentence-transformers' ``similarity``)."""
        q = self.encode([queries] if isinstance(queries, str) else list(queries), "query")
        d = self.encode([documents] if isinstance(documents, str) else list(documents), "doc")
        return np.array(
            [[float((qi @ dj.T).max(axis=1).sum()) if len(dj) else 0.0 for dj in d] for qi in q], np.float32
        )

    def __repr__(self) -> str:
        c = self.config
        return (
            f"MultiVectorEncoder({self.name!r}, dim={c.dim}, query_length={c.query_length}, "
            f"doc_max_length={c.doc_max_length}, scoring={c.scoring!r})"
        )

    # ----------------------------------------------------------------- saving
    def save(self, path: str | Path) -> Path:
        """Write a sentence-transformers MultiVectorEncoder folder (atomically)."""
        from safetensors.torch import save_file

        path, c = Path(path), self.config
        with atomic_path(path, is_dir=True) as tmp:
            self.encoder.save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)
            expansion = {"strategy": "fixed", "attend": False, "token": None, "length": c.query_length}
            _write(
                tmp / "sentence_bert_config.json",
                {
                    "transformer_task": "feature-extraction",
                    "modality_config": {"text": {"method": "forward", "method_output_name": "last_hidden_state"}},
                    "module_output_name": "token_embeddings",
                    "max_seq_length": c.doc_max_length,
                    "query_expansion": expansion,
                },
            )
            (tmp / "1_Dense").mkdir()
            save_file(
                {"linear.weight": self.projection.weight.detach().cpu().contiguous()},
                str(tmp / "1_Dense" / "model.safetensors"),
            )
            _write(
                tmp / "1_Dense" / "config.json",
                {
                    "in_features": self.projection.in_features,
                    "out_features": c.dim,
                    "bias": False,
                    "activation_function": "torch.nn.modules.linear.Identity",
                }
                | _TOKENS,
            )
            skip = list(string.punctuation) if c.skip_punctuation else []
            _write(
                tmp / "2_MultiVectorMask" / "config.json",
                {"skiplist_words": skip, "skiplist_tasks": ["document"], "keep_only_token_ids": None},
            )
            _write(tmp / "3_Normalize" / "config.json", _TOKENS)
            _write(
                tmp / "modules.json",
                [{"idx": i, "name": str(i), "path": p, "type": t} for i, (p, t) in enumerate(_TYPES)],
            )
            _write(
                tmp / "config_sentence_transformers.json",
                {
                    "model_type": "MultiVectorEncoder",
                    "prompts": {"query": "", "document": ""},
                    "default_prompt_name": None,
                    "similarity_fn_name": "maxsim",
                },
            )
            _write(tmp / "rankwise.json", {"scoring": c.scoring, "xtr_k": c.xtr_k, "base_model": self.name})
        return path


def _write(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2))

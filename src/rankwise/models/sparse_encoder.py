"""Learned sparse encoder: SPLADE and its inference-free variant.

SPLADE (Formal et al., SIGIR 2021; v2 with max pooling, arXiv 2109.10086): a text's weight for
vocabulary term ``j`` is ``w_j = max_t log(1 + relu(logit_tj))`` over its tokens ``t``, where the
logits come from the backbone's masked-LM head (its decoder tied to the word embeddings; a
checkpoint without the head gets the transform layer initialised as the masked-LM head is, by
transformers' own initialiser). Relevance is the dot product of the query's and document's weights.

Inference-free (Geng, Ru and Yang, arXiv 2411.04403): documents as above, queries without a model:
``q_j = weight_j`` for each vocabulary term present in the query (no special tokens), from a table
that starts at the corpus's IDF (or at ones) and may be trained.

``save`` writes a sentence-transformers ``SparseEncoder`` folder (a fill-mask ``Transformer`` and
``SpladePooling``; the inference-free variant under a query/document ``Router`` with a
``SparseStaticEmbedding`` for queries), so ``SparseEncoder(path)`` gives the same vectors.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from rankwise.errors import RankwiseError
from rankwise.io import atomic_path
from rankwise.models.bi_encoder import Side, TokenCount, pretrained, resolve_source
from rankwise.models.chunks import length_chunks, restore_order
from rankwise.models.modes import evaluating
from rankwise.models.sparse_pooling import splade_pool

_ST_TRANSFORMER = {
    "transformer_task": "fill-mask",
    "modality_config": {"text": {"method": "forward", "method_output_name": "logits"}},
    "module_output_name": "token_embeddings",
}
_POOLING = {"pooling_strategy": "max", "activation_function": "relu", "embedding_dimension": None}
_TYPES = {
    "Transformer": "sentence_transformers.base.modules.transformer.Transformer",
    "SpladePooling": "sentence_transformers.sparse_encoder.modules.splade_pooling.SpladePooling",
    "SparseStaticEmbedding": "sentence_transformers.sparse_encoder.modules.sparse_static_embedding.SparseStaticEmbedding",
    "Router": "sentence_transformers.base.modules.router.Router",
}


@dataclass
class SparseConfig:
    query_max_length: int = 256
    doc_max_length: int = 256
    inference_free: bool = False
    train_query_weights: bool = True  # inference-free: the query table learns with the model


def bm25_idf(token_ids: Iterable[Sequence[int]], vocab_size: int) -> torch.Tensor:
    """BM25's IDF of every vocabulary id, ``log(1 + (N - df + 0.5) / (df + 0.5))``, over tokenised documents.

    >>> [round(x, 4) for x in bm25_idf([[1, 2], [2]], 4).tolist()]
    [1.7918, 0.6931, 0.1823, 1.7918]
    """
    df: Counter[int] = Counter()
    n = 0
    for ids in token_ids:
        df.update(set(ids))
        n += 1
    counts = torch.zeros(vocab_size)
    counts[list(df)] = torch.tensor(list(df.values()), dtype=torch.float32)
    return torch.log1p((n - counts + 0.5) / (counts + 0.5))


def _st_layout(path: Path) -> tuple[Path, Path | None]:
    """The masked-LM folder and the query table's folder (inference-free) of a sentence-transformers folder."""
    modules = json.loads((path / "modules.json").read_text())
    kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
    if kinds == ["Router"]:
        router = json.loads((path / modules[0]["path"] / "router_config.json").read_text())["structure"]
        query, doc = router["query"], router["document"]
        if [q.split("_", 2)[-1] for q in query] != ["SparseStaticEmbedding"]:
            raise RankwiseError(f"{path}: only a SparseStaticEmbedding query route is supported, got {query}")
        return path / modules[0]["path"] / doc[0], path / modules[0]["path"] / query[0]
    if "SpladePooling" not in kinds:
        raise RankwiseError(f"{path}: not a SPLADE folder (modules {kinds})")
    return path / modules[0].get("path", ""), None


def is_sparse_folder(path: Path) -> bool:
    """A sentence-transformers folder whose ``config_sentence_transformers.json`` says SparseEncoder."""
    cfg = Path(path) / "config_sentence_transformers.json"
    try:
        return json.loads(cfg.read_text()).get("model_type") == "SparseEncoder"
    except (OSError, ValueError):
        return False


def _read_lengths(path: Path, backbone: Path, cfg: SparseConfig) -> SparseConfig:
    for where in (backbone / "sentence_bert_config.json", path / "rankwise.json"):
        if where.is_file():
            extra = json.loads(where.read_text())
            cfg.doc_max_length = int(extra.get("max_seq_length") or cfg.doc_max_length)
            cfg.query_max_length = int(extra.get("query_max_length") or cfg.doc_max_length)
            cfg.doc_max_length = int(extra.get("doc_max_length") or cfg.doc_max_length)
    return cfg


def _read(model, query_max_length: int | None, doc_max_length: int | None, seed: int = 0):
    """Masked LM, tokenizer, config, query table (or None), label of what ``model`` names and the
    names of the parameters its checkpoint lacks (a masked-LM head, initialised from ``seed``, not
    the global random state)."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    path, label = resolve_source(model)
    cfg, table, backbone = SparseConfig(), None, path
    if is_sparse_folder(path):
        backbone, table_dir = _st_layout(path)
        cfg.inference_free = table_dir is not None
        if table_dir is not None:
            from safetensors.torch import load_file

            table = load_file(str(table_dir / "model.safetensors"))["weight"]
            cfg.train_query_weights = not json.loads((table_dir / "config.json").read_text()).get("frozen", False)
        cfg = _read_lengths(path, backbone, cfg)
    cfg.query_max_length = query_max_length or cfg.query_max_length
    cfg.doc_max_length = doc_max_length or cfg.doc_max_length
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(backbone))
        hf_logging.set_verbosity_error()  # a dense checkpoint has no masked-LM transform: initialised, as intended
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            mlm, info = pretrained(AutoModelForMaskedLM, backbone, output_loading_info=True)
    except (OSError, ValueError) as exc:
        raise RankwiseError(f"cannot load model {model!r} as a masked LM: {exc}") from None
    finally:
        hf_logging.set_verbosity_warning()
    fresh = tuple(n for n, _ in mlm.named_parameters() if n in set(info["missing_keys"]))
    return mlm, tokenizer, cfg, table, label, fresh


class SparseEncoder(nn.Module):
    """SPLADE (``inference_free=False``) or an inference-free sparse encoder over a masked-LM backbone."""

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        inference_free: bool | None = None,
        idf: torch.Tensor | None = None,
        query_max_length: int | None = None,
        doc_max_length: int | None = None,
        seed: int = 0,
        device: str | torch.device | None = None,
    ) -> None:
        """``model``: None for the packaged all-MiniLM-L6-v2 with a masked-LM head (SPLADE from a
        dense start; a head the checkpoint lacks is drawn from ``seed``), a sentence-transformers
        SparseEncoder folder (SPLADE or inference-free), any masked-LM or encoder folder, or a hub
        name. ``idf``: the inference-free query table's start."""
        from rankwise.device import resolve_device

        super().__init__()
        self.mlm, self.tokenizer, self.config, table, self.name, fresh = _read(
            model, query_max_length, doc_max_length, seed
        )
        self.fresh_parameters: tuple[str, ...] = fresh  # drawn, not loaded: fit by sparse_head.fit_fresh_head
        if inference_free is not None:
            self.config.inference_free = inference_free
        self.query_weights = None
        self._pooled_head_ok: bool | None = None
        if self.config.inference_free:
            table = idf if idf is not None else table if table is not None else torch.ones(self.mlm.config.vocab_size)
            self.query_weights = nn.Parameter(table.float(), requires_grad=self.config.train_query_weights)
        self.eval().to(resolve_device(device))

    # ---------------------------------------------------------------- loading
    @classmethod
    def load(cls, name_or_path: str | Path | None = None, **options) -> SparseEncoder:
        """The same as ``SparseEncoder(name_or_path, **options)``."""
        return cls(name_or_path, **options)

    @property
    def device(self) -> torch.device:
        return next(self.mlm.parameters()).device

    @property
    def vocab_size(self) -> int:
        return int(self.mlm.config.vocab_size)

    def set_idf(self, documents: Sequence[str]) -> torch.Tensor:
        """Start the inference-free query table at ``documents``' BM25 IDF (the seed paper's start)."""
        if self.query_weights is None:
            raise RankwiseError("set_idf: only an inference-free model has a query table")
        ids = self.tokenizer(list(documents), add_special_tokens=False, truncation=True)["input_ids"]
        idf = bm25_idf(ids, self.vocab_size)
        with torch.no_grad():
            self.query_weights.copy_(idf.to(self.query_weights.device))
        return idf

    # --------------------------------------------------------------- encoding
    def max_length(self, side: Side) -> int:
        return self.config.query_max_length if side == "query" else self.config.doc_max_length

    def model_free(self, side: Side) -> bool:
        return side == "query" and self.config.inference_free

    def token_ids(self, texts: Sequence[str], side: Side, cache: dict | None = None) -> list[list[int]]:
        """Input ids (truncated, unpadded); the inference-free query side has no special tokens."""
        special = not self.model_free(side)
        missing = [t for t in dict.fromkeys(texts) if cache is None or (side, t) not in cache]
        found = {}
        if missing:
            enc = self.tokenizer(missing, truncation=True, max_length=self.max_length(side), add_special_tokens=special)
            found = dict(zip(missing, enc["input_ids"]))
            if cache is not None:
                cache.update({(side, t): x for t, x in found.items()})
        return [found[t] if t in found else cache[(side, t)] for t in texts]

    def _vectors(self, ids: list[list[int]], side: Side) -> torch.Tensor:
        """Dense ``[n, vocab]`` weights of one padded chunk, with a graph."""
        if self.model_free(side):
            rows = torch.zeros(len(ids), self.vocab_size, device=self.device)
            for i, x in enumerate(ids):
                rows[i, x] = 1.0  # presence, not counts, as SparseStaticEmbedding does
            return rows * self.query_weights
        batch = {k: v.to(self.device) for k, v in self.tokenizer.pad({"input_ids": ids}, return_tensors="pt").items()}
        if self._pooled_head():
            head = self.mlm.get_output_embeddings()  # its logits are never built
            return splade_pool(self.head_states(batch), head.weight, head.bias, batch["attention_mask"])
        return _dense_pool(self.mlm(**batch).logits, batch["attention_mask"])

    def head_states(self, batch) -> torch.Tensor:
        """``[texts, tokens, hidden]``: the masked LM's output layer's input for a tokenised batch."""
        with _head_input(self.mlm.get_output_embeddings()):
            return self.mlm(**batch).logits

    def _pooled_head(self) -> bool:
        """Whether :func:`splade_pool` may stand in for the masked LM's output layer: it is a plain
        ``Linear`` whose logits the model returns as they are (checked once on a short text, as
        some architectures transform logits after that layer)."""
        if self._pooled_head_ok is None:
            head = self.mlm.get_output_embeddings()
            self._pooled_head_ok = False
            if type(head) is nn.Linear:
                ids = self.tokenizer(["a check of the output layer"], return_tensors="pt").to(self.device)
                with evaluating(self):
                    dense = _dense_pool(self.mlm(**ids).logits, ids["attention_mask"])
                    pooled = splade_pool(self.head_states(ids), head.weight, head.bias, ids["attention_mask"])
                self._pooled_head_ok = bool(torch.allclose(pooled, dense, rtol=1e-4, atol=1e-5))
        return self._pooled_head_ok

    def embed_counted(
        self, texts: Sequence[str], side: Side, *, token_cache: dict | None = None, chunk_tokens: int | None = None
    ) -> tuple[torch.Tensor, TokenCount]:
        """``[n, vocab]`` weights with gradients (training), in length-sorted chunks of at most
        ``chunk_tokens`` padded tokens, and the call's (real, padded) token counts."""
        ids = self.token_ids(texts, side, token_cache)
        lengths = [max(1, len(x)) for x in ids]
        chunks = length_chunks(lengths, chunk_tokens)
        parts = [self._vectors([ids[i] for i in c], side) for c in chunks]
        padded = sum(len(c) * max(lengths[i] for i in c) for c in chunks)
        out = torch.cat(parts) if len(parts) > 1 else parts[0]
        return restore_order(out, chunks, chunk_tokens), TokenCount(sum(lengths), padded)

    def encode(self, texts: Sequence[str] | str, side: Side = "doc", *, batch_size: int = 32, progress=None):
        """A ``scipy.sparse.csr_matrix`` ``[n, vocab]`` of float32 weights in input order (one text: one row)."""
        if isinstance(texts, str):
            return self.encode([texts], side, batch_size=batch_size)
        ids = self.token_ids(texts, side)
        order = np.argsort([-len(x) for x in ids], kind="stable")
        rows: list[sp.csr_matrix] = []
        with evaluating(self), torch.no_grad():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                rows.append(sp.csr_matrix(self._vectors([ids[i] for i in idx], side).float().cpu().numpy()))
                if progress:
                    progress(len(idx))
        if not rows:
            return sp.csr_matrix((0, self.vocab_size), dtype=np.float32)
        stacked = sp.vstack(rows).tocsr()
        return stacked[np.argsort(order)].astype(np.float32)

    def score(self, queries: Sequence[str] | str, documents: Sequence[str] | str) -> np.ndarray:
        """The ``[queries x documents]`` matrix of dot products (sentence-transformers'
        ``similarity(encode_query(q), encode_document(d))``)."""
        q = self.encode([queries] if isinstance(queries, str) else list(queries), "query")
        d = self.encode([documents] if isinstance(documents, str) else list(documents), "doc")
        return np.asarray((q @ d.T).todense(), dtype=np.float32)

    def __repr__(self) -> str:
        c = self.config
        kind = "inference-free" if c.inference_free else "splade"
        return (
            f"SparseEncoder({self.name!r}, {kind}, vocab={self.vocab_size}, "
            f"query_max_length={c.query_max_length}, doc_max_length={c.doc_max_length})"
        )

    # ----------------------------------------------------------------- saving
    def save(self, path: str | Path) -> Path:
        """Write a sentence-transformers SparseEncoder folder (atomically)."""
        path = Path(path)
        with atomic_path(path, is_dir=True) as tmp:
            if self.config.inference_free:
                self._save_router(tmp)
            else:
                self._save_mlm(tmp)
                _write(tmp / "1_SpladePooling" / "config.json", _POOLING)
                _write(
                    tmp / "modules.json",
                    [_module(0, "", "Transformer"), _module(1, "1_SpladePooling", "SpladePooling")],
                )
            _write(
                tmp / "config_sentence_transformers.json",
                {
                    "model_type": "SparseEncoder",
                    "prompts": {"query": "", "document": ""},
                    "default_prompt_name": None,
                    "similarity_fn_name": "dot",
                },
            )
            _write(
                tmp / "rankwise.json",
                {
                    "query_max_length": self.config.query_max_length,
                    "doc_max_length": self.config.doc_max_length,
                    "base_model": self.name,
                },
            )
        return path

    def _save_mlm(self, where: Path) -> None:
        self.mlm.save_pretrained(where)
        self.tokenizer.save_pretrained(where)
        _write(where / "sentence_bert_config.json", _ST_TRANSFORMER | {"max_seq_length": self.config.doc_max_length})

    def _save_router(self, tmp: Path) -> None:
        from safetensors.torch import save_file

        query, doc, pool = "query_0_SparseStaticEmbedding", "document_0_Transformer", "document_1_SpladePooling"
        self._save_mlm(tmp / doc)
        _write(tmp / pool / "config.json", _POOLING)
        (tmp / query).mkdir()
        save_file(
            {"weight": self.query_weights.detach().float().cpu().contiguous()}, str(tmp / query / "model.safetensors")
        )
        self.tokenizer.save_pretrained(tmp / query)
        _write(tmp / query / "config.json", {"frozen": not self.config.train_query_weights})
        types = {query: _TYPES["SparseStaticEmbedding"], doc: _TYPES["Transformer"], pool: _TYPES["SpladePooling"]}
        structure = {"query": [query], "document": [doc, pool]}
        params = {"default_route": "document", "allow_empty_key": True, "route_mappings": {}}
        _write(tmp / "router_config.json", {"types": types, "structure": structure, "parameters": params})
        _write(tmp / "modules.json", [_module(0, "", "Router")])


def _dense_pool(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """SPLADE's pooling over full ``[texts, tokens, vocab]`` logits (any output layer)."""
    return torch.log1p(torch.relu(logits * mask.unsqueeze(-1).to(logits.dtype))).max(dim=1).values


@contextmanager
def _head_input(head: nn.Module) -> Iterator[None]:
    """The output layer returns its input for the block, so the model's "logits" are the states
    :func:`splade_pool` needs."""
    head.forward = lambda x: x
    try:
        yield
    finally:
        del head.forward


def _module(idx: int, path: str, kind: str) -> dict:
    return {"idx": idx, "name": str(idx), "path": path, "type": _TYPES[kind]}


def _write(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2))


def flops_per_query(query_vectors: sp.csr_matrix, doc_vectors: sp.csr_matrix) -> float:
    """Expected multiplications of an inverted-index query (Paria et al., ICLR 2020):
    ``sum_j P(q_j != 0) * P(d_j != 0)`` over vocabulary terms.

    >>> q = sp.csr_matrix(np.array([[1.0, 0, 2.0], [0, 0, 1.0]]))
    >>> d = sp.csr_matrix(np.array([[1.0, 1.0, 0], [0, 0, 3.0]]))
    >>> flops_per_query(q, d)
    0.75
    """
    pq = np.asarray((query_vectors != 0).mean(axis=0)).ravel()
    pd = np.asarray((doc_vectors != 0).mean(axis=0)).ravel()
    return float(pq @ pd)


def mean_nonzeros(vectors: sp.csr_matrix) -> float:
    return float(vectors.getnnz(axis=1).mean()) if vectors.shape[0] else math.nan

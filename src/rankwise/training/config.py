"""Validated training configuration (pydantic), readable from and written to TOML.

Option strings are parsed here, once: ``TrainConfig(loss="infonce:temperature=0.05")`` holds a
:class:`~rankwise.losses.Loss`, ``negatives="bm25:k=7"`` a
:class:`~rankwise.negatives.strategies.MinedNegatives`, and so on; each field also accepts the
object itself (your own subclass included). Dumping writes the option strings back, so
``config.toml`` re-creates the run. The ``train`` command's flags are generated from these fields.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from rankwise.errors import ConfigError, RankwiseError
from rankwise.losses import get
from rankwise.losses.sparsity import SPARSITY
from rankwise.negatives.curriculum import CURRICULA
from rankwise.negatives.false_negatives import FALSE_NEGATIVES
from rankwise.negatives.strategies import NEGATIVES
from rankwise.training.samplers import BATCHING, RandomBatches, length_bucketed

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

LossField = Annotated[Any, BeforeValidator(get), PlainSerializer(lambda v: v.spec, return_type=str)]
"""A loss spec, a :class:`~rankwise.losses.Loss`, or a plain function ``fn(scores, labels, mask)``."""


# options that do not change what is trained: they never block a resume
NOT_TRAINING = frozenset(
    {
        "keep_final_checkpoint",
        "eval_every",
        "keep_checkpoints",
        "diagnostics_every",
        "device",
        "best_metric",
        "best_alpha",
    }
)


# the default chunk of padded tokens: on 2 CPU cores 4,096 (16 texts of 256 tokens) loses no speed to
# smaller matrix products and saves the padding a long text forces on short ones (the throughput
# benchmark's profile); an accelerator wants larger products
CPU_CHUNK_TOKENS, ACCELERATOR_CHUNK_TOKENS = 4096, 65536


class TrainConfig(BaseModel):
    """How to train: every option of ``rankwise train`` (the flags are these fields)."""

    model_config = ConfigDict(
        extra="forbid", protected_namespaces=(), arbitrary_types_allowed=True, validate_assignment=True
    )

    kind: Optional[str] = Field(
        None,
        description="model family: bi-encoder (retriever), cross-encoder (reranker), or any registered family "
        "[default: bi-encoder]",
    )
    model: Optional[str] = Field(None, description="base model: the packaged all-MiniLM-L6-v2, a folder, or a hub name")
    loss: LossField = Field(
        default_factory=lambda: get("infonce:temperature=0.05"),
        description="loss spec, e.g. 'infonce:temperature=0.05' or 'infonce+0.1*tcm', or module.function of your own",
    )
    batch_size: int = Field(32, ge=2, description="training examples per step")
    steps: int = Field(100, ge=1, description="optimizer steps")
    lr: float = Field(2e-5, gt=0, description="peak learning rate (AdamW)")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay (not on biases and norms)")
    warmup_ratio: float = Field(0.1, ge=0, le=1, description="share of the steps with linear warm-up from 0")
    max_grad_norm: float = Field(1.0, gt=0, description="gradient clipping norm")
    seed: int = Field(42, description="seed of data order, sampling and dropout")
    query_max_length: Optional[int] = Field(
        None, ge=4, description="token limit for queries while training (default: the model's)"
    )
    doc_max_length: Optional[int] = Field(
        None, ge=4, description="token limit for documents while training (default: the model's)"
    )
    embedding_terms: Optional[str] = Field(
        None,
        description="dual encoder: 'matryoshka:dims=64/128/256[,weights=..,distill=W,tau=T]' and/or "
        "'quantize:precision=int8|binary' (straight-through), each applying the loss to those embeddings' scores too "
        "(distill: KL from the full size's scores into each prefix's)",
    )
    lora: Optional[str] = Field(
        None,
        description="train LoRA adapters only (peft): 'lora:r=8,alpha=16,dropout=0.05,targets=query/value,save=merged|adapter'",
    )
    untie: bool = Field(
        False, description="dual encoder: a query tower of its own (a copy of the shared one), saved as a Router"
    )
    principal_axes: bool = Field(
        False,
        description="dual encoder: before training, rotate the embedding onto the principal axes of the training "
        "documents' embeddings (full-size cosines unchanged; prefixes keep the most: Matryoshka's start), saved as a Dense",
    )
    query_prompt: Optional[str] = Field(
        None,
        description="prompt prepended to queries, e.g. 'query: ' (E5); kept in the saved model [default: the model's]",
    )
    doc_prompt: Optional[str] = Field(
        None,
        description="prompt prepended to documents, e.g. 'passage: '; kept in the saved model [default: the model's]",
    )
    negatives_per_query: int = Field(
        0, ge=0, description="hard negatives per query per step (0: 1 with a hard-negative strategy)"
    )
    list_size: Optional[int] = Field(
        None,
        ge=2,
        description="cross-encoder: candidates per query per step, its positive and negatives (default 8); "
        "feature scorer: rows sampled from a longer list (default: the whole list)",
    )
    head_lr_scale: float = Field(
        1.0,
        gt=0,
        description="a fresh scoring head (a cross-encoder's pooler and classifier) or an inference-free query table learns at this x lr",
    )
    pair_max_length: Optional[int] = Field(
        None, ge=8, description="cross-encoder: token limit of a (query, document) pair while training"
    )
    negatives: NEGATIVES.field() = Field(
        None,
        description="inbatch | file | bm25:... | dense:... | star:... | dynamic:... "
        "(default: file when the examples carry negatives, else inbatch)",
    )
    batching: BATCHING.field() = Field(
        default_factory=RandomBatches, description="random | nodup | tas:clusters=C | ngame:every=N,cluster_size=S"
    )
    false_negatives: FALSE_NEGATIVES.field() = Field(
        None, description="teacher:tau=T | self:tau=T (down-weight likely false negatives)"
    )
    curriculum: CURRICULA.field() = Field(
        None, description="reciprank | normscore | kdescore, e.g. 'kdescore:steps=100' (easy samples first)"
    )
    sparsity: SPARSITY.field() = Field(
        None,
        description="sparse encoders: flops:query=Q,doc=D,warmup=W | idf-flops:doc=D,warmup=W "
        "(default: flops for SPLADE, idf-flops for inference-free)",
    )
    head_fit_steps: int = Field(
        60,
        ge=0,
        description="sparse encoders from a checkpoint without a masked-LM head: fit the drawn head to name each "
        "token for this many steps, then shift its biases to a sparse start (0: train from the drawn head)",
    )
    head_fit_expansion: float = Field(
        1.0, gt=0, description="that start's mean active terms per document, as a multiple of its distinct tokens"
    )
    head_fit_bm25_steps: int = Field(
        0,
        ge=0,
        description="after that fit, shape the pooled document weights toward BM25's term-frequency part for this "
        "many steps (rankwise.models.sparse_head; 0: not)",
    )
    head_fit_bm25_lr: float = Field(3e-4, gt=0, description="the learning rate of that BM25 shaping (Adam)")
    same_text_same_doc: bool = Field(
        False, description="documents with identical text count as one in a batch (never each other's negative)"
    )
    chunk_tokens: Optional[int] = Field(
        None,
        ge=0,
        description="encode each side in length-sorted chunks of at most this many padded tokens "
        f"(default: {CPU_CHUNK_TOKENS} on the CPU, {ACCELERATOR_CHUNK_TOKENS} on an accelerator; 0: off; "
        "equal to no chunking with dropout off; with dropout on, other masks)",
    )
    length_bucket: int = Field(
        0, ge=0, description="random batches sorted by length within buckets of this many batches (0: off)"
    )
    cache_chunk: Optional[int] = Field(
        None,
        ge=1,
        description="gradient caching: encode in chunks of this many texts (cross-encoder: pairs), "
        "for large batches in bounded memory (equal to no caching with dropout off; with dropout on, other masks)",
    )
    activation_checkpointing: bool = Field(
        False, description="recompute activations in the backward pass (less memory, ~30% more compute)"
    )
    bf16: bool = Field(False, description="bf16 autocast for the encoder (CUDA, or CPUs with AVX512-BF16/AMX)")
    device: Optional[str] = Field(None, description="cpu | cuda | cuda:N | mps (default: the best available)")
    diagnostics_every: int = Field(
        10,
        ge=0,
        description="log training diagnostics (negatives' hardness, false-negative rate, gradient spread) every N steps (0: off)",
    )
    checkpoint_every: int = Field(50, ge=1, description="write a checkpoint every N steps (when the run has a folder)")
    eval_every: int = Field(0, ge=0, description="evaluate on the eval split every N steps (0: before and after only)")
    keep_checkpoints: int = Field(2, ge=1, description="checkpoints kept on disk while training (the newest)")
    best_metric: Optional[str] = Field(
        None,
        description="rankwise train: keep the model of the evaluated step that is best on the eval split by this "
        "metric, preferring the earliest step not significantly worse (needs eval_every)",
    )
    best_alpha: float = Field(0.05, gt=0, lt=1, description="with best_metric: the paired t-test's level")
    patience: int = Field(
        0, ge=0, description="stop after this many evaluations without a better best_metric (0: never stop early)"
    )
    keep_final_checkpoint: bool = Field(
        False,
        description="rankwise train: keep the checkpoints once training has finished (default: the final model only)",
    )

    @field_validator("kind")
    @classmethod
    def _known_family(cls, v: Optional[str]) -> Optional[str]:
        if v is not None:
            import rankwise.families  # noqa: F401  (registers the built-in families)
            from rankwise.registry import FAMILIES

            if v not in FAMILIES.names():
                raise ValueError(f"{v!r}: expected one of {', '.join(FAMILIES.names())}")
        return v

    @field_validator("embedding_terms")
    @classmethod
    def _embedding_terms_spec(cls, v: Optional[str]) -> Optional[str]:
        if v is not None:
            from rankwise.losses.embedding_terms import parse_embedding_terms

            parse_embedding_terms(v)
        return v

    @field_validator("lora")
    @classmethod
    def _lora_spec(cls, v: Optional[str]) -> Optional[str]:
        if v is not None:
            from rankwise.training.lora import parse_lora

            parse_lora(v)  # a bad spec fails here, naming the parameter
        return v

    @field_validator("device")
    @classmethod
    def _known_device(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and v.split(":")[0] not in ("cpu", "cuda", "mps", "auto"):
            raise ValueError(f"{v!r}: expected cpu, cuda, cuda:N or mps")
        return v

    @model_validator(mode="after")
    def _best_needs_evaluations(self) -> TrainConfig:
        if (self.best_metric is not None or self.patience) and not self.eval_every:
            raise ValueError("best_metric and patience choose among evaluations: set eval_every too")
        if self.patience and self.best_metric is None:
            raise ValueError("patience counts evaluations without a better best_metric: set best_metric too")
        if self.best_metric is not None:
            from rankwise.metrics import parse_metric

            parse_metric(self.best_metric)
        return self

    @model_validator(mode="after")
    def _bucketing(self) -> TrainConfig:
        bucketed = length_bucketed(self.batching, self.length_bucket)
        if bucketed is not self.batching:
            object.__setattr__(self, "batching", bucketed)
        return self

    @classmethod
    def from_recipe(cls, name: str, teacher: str | Path | None = None, **overrides: Any) -> TrainConfig:
        """A named recipe's options (:data:`rankwise.training.recipes.RECIPES`), then ``overrides``."""
        from rankwise.training.recipes import recipe_options

        return cls(**(recipe_options(name, teacher) | overrides))

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> TrainConfig:
        """A validated copy: option strings in ``update`` are parsed like the constructor's."""
        return type(self)(**{**dict(self), **(update or {})})

    def chunk_tokens_on(self, device: Any) -> int | None:
        """The chunk size in padded tokens on ``device`` (a torch device or its name); None: off."""
        if self.chunk_tokens is not None:
            return self.chunk_tokens or None
        return CPU_CHUNK_TOKENS if str(device).startswith("cpu") else ACCELERATOR_CHUNK_TOKENS

    def to_toml_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class RunSection(BaseModel):
    """What a ``train`` command reads besides the training options (``[run]`` of a run folder's config.toml)."""

    model_config = ConfigDict(extra="ignore")

    data: Optional[str] = None
    split: str = "train"
    train_file: Optional[str] = None
    eval_split: Optional[str] = None
    check_data: Optional[str] = None  # an out-of-domain BEIR folder scored beside the eval split


class RunConfig(BaseModel):
    """A TOML file's ``[run]`` and ``[train]`` tables, read once."""

    run: RunSection = Field(default_factory=RunSection)
    train: TrainConfig = Field(default_factory=TrainConfig)


def _validation_error(exc: ValidationError, where: str) -> ConfigError:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"])
    cause = (first.get("ctx") or {}).get("error")
    msg = str(cause) if isinstance(cause, RankwiseError) else first["msg"]
    return ConfigError(f"{where}field '{field}': {msg}")


# what a run folder's config.toml holds besides [train]: read ([run]) or informative only
_TABLES = {"run", "train", "environment", "demo"}


def _check_tables(raw: dict[str, Any], path: Path) -> None:
    """A file with a [train] or [run] table holds nothing else a run reads: anything more is
    refused rather than silently ignored (a misspelt table, an option outside [train])."""
    if not ({"train", "run"} & set(raw)):
        return  # a flat file: its keys are the training options, checked as such
    extra = sorted(k for k in raw if k not in _TABLES)
    if extra:
        raise ConfigError(
            f"{path}: {', '.join(repr(k) for k in extra)} is outside [train] and [run]; "
            "training options go in the [train] table"
        )


def load_run_config(path: str | Path | None = None, run: dict[str, Any] | None = None, **overrides: Any) -> RunConfig:
    """Defaults, then the TOML file (its ``[train]`` table, or its top level when it has none, and its
    ``[run]`` table), then ``run`` and ``overrides`` (None values are ignored)."""
    data: dict[str, Any] = {}
    run_table: dict[str, Any] = {}
    where = ""
    if path is not None:
        path = Path(path)
        where = f"{path}: "
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
        _check_tables(raw, path)
        data.update(raw.get("train", {} if "run" in raw else raw))
        run_table.update(raw.get("run", {}))
    data.update({k: v for k, v in overrides.items() if v is not None})
    run_table.update({k: str(v) for k, v in (run or {}).items() if v is not None})
    try:
        return RunConfig(run=RunSection(**run_table), train=TrainConfig(**data))
    except ValidationError as exc:
        raise _validation_error(exc, where) from None
    except RankwiseError as exc:
        raise ConfigError(f"{where}{exc}") from None


def load_config(path: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """Defaults, then the TOML file (its top level or its ``[train]`` table), then ``overrides``."""
    return load_run_config(path, **overrides).train

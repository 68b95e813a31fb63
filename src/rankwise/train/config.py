"""Validated training configuration (pydantic), readable from and written to TOML."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rankwise.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: Optional[str] = Field(None, description="base model: None = packaged all-MiniLM-L6-v2, a folder, or a hub name")
    loss: str = Field("infonce:temperature=0.05", description="loss spec, e.g. 'infonce:temperature=0.05'")
    batch_size: int = Field(32, ge=2)
    steps: int = Field(100, ge=1, description="optimizer steps")
    lr: float = Field(2e-5, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, le=1)
    max_grad_norm: float = Field(1.0, gt=0)
    seed: int = 42
    query_max_length: int = Field(64, ge=4)
    doc_max_length: int = Field(256, ge=4)
    negatives_per_query: int = Field(0, ge=0, description="hard negatives per query per step (0: 1 when a hard-negative strategy is set)")
    negatives: Optional[str] = Field(None, description="inbatch | file | bm25:... | dense:... | star:... | dynamic:... (default: file when the examples carry negatives, else inbatch)")
    batching: str = Field("random", description="random | nodup | tas:clusters=C | ngame:every=N,cluster_size=S")
    false_negatives: Optional[str] = Field(None, description="teacher:tau=T | self:tau=T (down-weight likely false negatives)")
    curriculum: Optional[str] = Field(None, description="reciprank|normscore|kdescore:steps=M (easy samples first)")
    chunk_tokens: Optional[int] = Field(None, ge=64, description="encode each side in length-sorted chunks of at most this many padded tokens (less padding)")
    length_bucket: int = Field(0, ge=0, description="random batching sorted by length within buckets of this many batches (0: off)")
    activation_checkpointing: bool = Field(False, description="recompute activations in the backward pass (less memory, ~30% more compute)")
    bf16: bool = Field(False, description="bf16 autocast for the encoder (CPUs with AVX512-BF16/AMX, recent GPUs)")
    checkpoint_every: int = Field(50, ge=1)
    eval_every: int = Field(0, ge=0, description="evaluate on the eval split every N steps (0: before and after only)")
    keep_checkpoints: int = Field(2, ge=1)

    @field_validator("negatives", "batching", "false_negatives", "curriculum")
    @classmethod
    def _known_strategy(cls, v: Optional[str], info) -> Optional[str]:
        if v is None:
            return v
        from rankwise.negatives.curriculum import Curriculum
        from rankwise.negatives.false_negatives import FalseNegatives
        from rankwise.negatives.samplers import Sampler
        from rankwise.negatives.strategies import Negatives

        if info.field_name == "negatives":
            Negatives(v)
        elif info.field_name == "batching":
            Sampler(v, 2, 2, 0)
        elif info.field_name == "false_negatives":
            FalseNegatives(v)
        else:
            Curriculum(v)
        return v

    @field_validator("loss")
    @classmethod
    def _known_loss(cls, v: str) -> str:
        from rankwise.losses import get

        get(v)  # raises ConfigError naming the problem
        return v

    def to_toml_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


def load_config(path: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """Defaults, then the TOML file (its top level or its ``[train]`` table), then ``overrides``."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
        data.update(raw.get("train", raw))
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return TrainConfig(**data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = f"{path}: " if path else ""
        field = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{where}field '{field}': {first['msg']}") from None

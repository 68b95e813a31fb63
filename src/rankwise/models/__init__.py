"""Models: the dual encoder (``BiEncoder``) and the reranker (``CrossEncoder``)."""

from rankwise.models.bi_encoder import DEFAULT_MODEL, BiEncoder, EncoderConfig, default_model_path
from rankwise.models.cross_encoder import CrossEncoder, CrossEncoderConfig

__all__ = ["BiEncoder", "EncoderConfig", "CrossEncoder", "CrossEncoderConfig", "DEFAULT_MODEL", "default_model_path"]

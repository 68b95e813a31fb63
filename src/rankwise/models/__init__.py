"""Models: the dual encoder (``BiEncoder``)."""

from rankwise.models.bi_encoder import DEFAULT_MODEL, BiEncoder, EncoderConfig, default_model_path

__all__ = ["BiEncoder", "EncoderConfig", "DEFAULT_MODEL", "default_model_path"]

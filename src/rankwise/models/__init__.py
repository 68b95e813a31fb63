"""Models: the dual encoder (``BiEncoder``), the reranker (``CrossEncoder``), the learned sparse
(``SparseEncoder``) and multi-vector (``MultiVectorEncoder``) encoders."""

from rankwise.models.bi_encoder import DEFAULT_MODEL, BiEncoder, EncoderConfig, default_model_path
from rankwise.models.cross_encoder import CrossEncoder, CrossEncoderConfig
from rankwise.models.multi_vector import MultiVectorEncoder
from rankwise.models.sparse_encoder import SparseEncoder

__all__ = [
    "BiEncoder",
    "EncoderConfig",
    "CrossEncoder",
    "CrossEncoderConfig",
    "SparseEncoder",
    "MultiVectorEncoder",
    "DEFAULT_MODEL",
    "default_model_path",
]

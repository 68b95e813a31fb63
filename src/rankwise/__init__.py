"""rankwise: train and evaluate neural retrievers and rankers with ranking-aligned objectives.

The working set::

    import rankwise as rw

    train = rw.load_dataset("stdlib-code", "train")       # a BEIR folder or a built-in set
    model = rw.BiEncoder.load()                            # the packaged all-MiniLM-L6-v2
    examples = rw.mine(train, "bm25:k=7,window=1-30")      # hard negatives
    rw.train(model, examples, rw.TrainConfig(steps=90))    # any loss, negatives, batching
    rw.evaluate_model(model, rw.load_dataset("stdlib-code", "test")).metrics
    reranker = rw.CrossEncoder()                           # a reranker: fresh head on the same backbone
    rw.train(reranker, examples, rw.TrainConfig(list_size=8))  # the same loop, candidate lists

Names load on first use, so ``import rankwise`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    # data
    "load_dataset": "rankwise.data.beir",
    "Dataset": "rankwise.data.beir",
    "TrainExample": "rankwise.data.examples",
    "load_examples": "rankwise.data.examples",
    # models
    "BiEncoder": "rankwise.models.bi_encoder",
    "CrossEncoder": "rankwise.models.cross_encoder",
    "SparseEncoder": "rankwise.models.sparse_encoder",
    "MultiVectorEncoder": "rankwise.models.multi_vector",
    "LLMReranker": "rankwise.models.llm_reranker",
    # model families
    "register_family": "rankwise.families",
    # training
    "TrainConfig": "rankwise.training.config",
    "train": ("rankwise.training.loop", "train"),
    "mine": ("rankwise.negatives.mining", "mine_negatives"),
    # evaluation
    "evaluate_model": "rankwise.metrics.model",
    "evaluate": "rankwise.metrics.ranking",
    "compare": ("rankwise.metrics.compare", "compare_runs"),
    # search pipelines: retrieve, then rerank
    "Pipeline": "rankwise.index.rerank",
    "Fusion": "rankwise.index.fusion",
    # the loss library
    "losses": ("rankwise.losses", None),
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'rankwise' has no attribute {name!r}")
    module, attr = target if isinstance(target, tuple) else (target, name)
    value = importlib.import_module(module) if attr is None else getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from rankwise import losses as losses
    from rankwise.data.beir import Dataset as Dataset
    from rankwise.data.beir import load_dataset as load_dataset
    from rankwise.data.examples import TrainExample as TrainExample
    from rankwise.data.examples import load_examples as load_examples
    from rankwise.families import register_family as register_family
    from rankwise.index.fusion import Fusion as Fusion
    from rankwise.index.rerank import Pipeline as Pipeline
    from rankwise.metrics.compare import compare_runs as compare  # noqa: F401
    from rankwise.metrics.model import evaluate_model as evaluate_model
    from rankwise.metrics.ranking import evaluate as evaluate
    from rankwise.models.bi_encoder import BiEncoder as BiEncoder
    from rankwise.models.cross_encoder import CrossEncoder as CrossEncoder
    from rankwise.models.llm_reranker import LLMReranker as LLMReranker
    from rankwise.models.multi_vector import MultiVectorEncoder as MultiVectorEncoder
    from rankwise.models.sparse_encoder import SparseEncoder as SparseEncoder
    from rankwise.negatives.mining import mine_negatives as mine  # noqa: F401
    from rankwise.training.config import TrainConfig as TrainConfig
    from rankwise.training.loop import train as train

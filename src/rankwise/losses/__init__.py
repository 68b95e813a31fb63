"""Ranking losses on one shape: ``loss(scores, labels, mask=None, *, weights=None, reduction="mean", **hp)``.

``scores``, ``labels`` (graded, >= 0) and ``mask`` are ``[n_lists, list_size]``. Each loss is a
pure function with its formula, paper and a worked example in its docstring; the registry
resolves ``"name:key=value,..."`` specs (and sums such as ``"infonce+0.1*tcm"``) from the CLI or a config;
a plain function ``fn(scores, labels, mask)`` is a loss too (:class:`FunctionLoss`).
"""

from rankwise.losses._common import LossFacts
from rankwise.losses.distillation import ar2, kl, margin_mse
from rankwise.losses.distribution import wasserstein
from rankwise.losses.listwise import decoupled_softmax, infonce, listmle, listnet, plistmle, soft_topk, softmax
from rankwise.losses.metric import approxndcg, lambdaloss, neuralndcg
from rankwise.losses.pairwise import diffkendall, hinge, irpo, lambdarank, lipo, mw, ranknet
from rankwise.losses.pointwise import mse, sigmoid
from rankwise.losses.policy import pg_rank
from rankwise.losses.registry import NEEDS_TEACHER, FunctionLoss, Loss, LossSum, available, facts, get, register_loss
from rankwise.losses.regularisers import tcm

__all__ = [
    "softmax",
    "ar2",
    "sigmoid",
    "mse",
    "ranknet",
    "hinge",
    "mw",
    "lambdarank",
    "infonce",
    "listnet",
    "listmle",
    "plistmle",
    "lambdaloss",
    "approxndcg",
    "neuralndcg",
    "wasserstein",
    "decoupled_softmax",
    "soft_topk",
    "lipo",
    "irpo",
    "diffkendall",
    "margin_mse",
    "kl",
    "pg_rank",
    "tcm",
    "available",
    "get",
    "register_loss",
    "FunctionLoss",
    "NEEDS_TEACHER",
    "Loss",
    "LossSum",
    "LossFacts",
    "facts",
]

"""False-negative control beyond mining's margin guard (``--false-negatives``).

Pooling bias (Cai et al., "Hard Negatives or False Negatives: Correcting Pooling Bias in
Training Neural Ranking Models", CIKM 2022): judgements cover only what the pooled systems
retrieved, so a strong retriever's unjudged top-ranked documents are often relevant, and
treating them as negatives hurts. CET learns a relevance model and a selection (pooling) model
jointly; what is built here is a lighter variant in its spirit, stated exactly:

* Only a query's own *mined, unjudged* hard negatives are treated as uncertain (in-batch
  negatives are other queries' positives, i.e. random documents; judged grade-0 documents are
  confirmed). Each gets a probability of being a false negative,
  ``p_fn = sigmoid((s_n - s_p) / tau)``: how strongly a scorer prefers the negative over the
  query's positive (Bradley-Terry). The scorer is the teacher (``teacher:tau=...``, scores
  from the mining teacher kept in the training file) or the model itself (``self:tau=...``,
  its current scores, without gradient, i.e. self-paced confidence).
* The negative is down-weighted to ``w = 1 - p_fn`` (clamped to ``min_weight``) by adding
  ``log w`` to its score. For InfoNCE this is exactly a weighted partition function,
  ``-log e^{s_p} / (e^{s_p} + sum_j w_j e^{s_j})``: the negative counts as w of a negative;
  for other losses it lowers the uncertain negative's score before the loss sees it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch

from rankwise.data.examples import TrainExample
from rankwise.registry import Registry


@dataclass
class FalseNegativeWeighting:
    """Down-weights each query's own mined hard negatives by ``1 - P(false negative)``;
    subclasses say whose scores give that probability (:meth:`reference`)."""

    needs_teacher_scores: ClassVar[bool] = False
    tau: float = 1.0
    min_weight: float = 0.05

    def __post_init__(self) -> None:
        if self.tau <= 0:
            raise ValueError("tau must be > 0")
        if not 0 < self.min_weight <= 1:
            raise ValueError("min_weight must be in (0, 1]")

    def reference(
        self, i: int, scores: torch.Tensor, batch, example: TrainExample
    ) -> tuple[float, torch.Tensor] | None:
        """(positive score, scores of the query's own hard negatives), or None to leave it as is."""
        raise NotImplementedError

    def weights(self, scores: torch.Tensor, batch, examples: Sequence[TrainExample]) -> torch.Tensor:
        """[n_queries, n_docs] weights, 1 everywhere but at each query's own hard negatives."""
        w = torch.ones_like(scores, dtype=torch.float32)
        for i, own in enumerate(batch.hard):
            if not own:
                continue
            ref = self.reference(i, scores, batch, examples[i])
            if ref is None:
                continue
            s_p, s_n = ref
            p_fn = torch.sigmoid((s_n.to(w.device) - s_p) / self.tau)
            w[i, [c for c, _ in own]] = (1 - p_fn).clamp_min(self.min_weight)
        return w

    def adjust(
        self, scores: torch.Tensor, batch, examples: Sequence[TrainExample]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.weights(scores, batch, examples)
        return scores + torch.log(w).to(scores.dtype), w

    def __str__(self) -> str:
        return FALSE_NEGATIVES.spec_of(self) or type(self).__name__


FALSE_NEGATIVES: Registry[FalseNegativeWeighting] = Registry("false negatives", FalseNegativeWeighting)


@FALSE_NEGATIVES.register("teacher")
@dataclass
class TeacherFalseNegatives(FalseNegativeWeighting):
    """P from the mining teacher's scores kept in the training file."""

    needs_teacher_scores: ClassVar[bool] = True

    def reference(self, i, scores, batch, example):
        if example.scores is None:
            return None  # no teacher scores for this example: left as is
        return max(example.scores.positives), torch.tensor([example.scores.negatives[j] for _, j in batch.hard[i]])


@FALSE_NEGATIVES.register("self")
@dataclass
class SelfFalseNegatives(FalseNegativeWeighting):
    """P from the model's own current scores, without gradient (self-paced confidence)."""

    def reference(self, i, scores, batch, example):
        own = [c for c, _ in batch.hard[i]]
        return float(scores[i, batch.positive[i]].detach()), scores[i, own].detach().float()

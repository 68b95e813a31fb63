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

from dataclasses import dataclass

import torch

from rankwise.errors import ConfigError
from rankwise.spec import parse_options, split_spec

KINDS = ("teacher", "self")


@dataclass
class FalseNegativeOptions:
    tau: float = 1.0
    min_weight: float = 0.05

    def __post_init__(self) -> None:
        if self.tau <= 0:
            raise ValueError("tau must be > 0")
        if not 0 < self.min_weight <= 1:
            raise ValueError("min_weight must be in (0, 1]")


class FalseNegatives:
    def __init__(self, spec: str) -> None:
        self.kind, params = split_spec(spec)
        if self.kind not in KINDS:
            raise ConfigError(f"false negatives {spec!r}: unknown kind {self.kind!r}; available: {', '.join(KINDS)}")
        self.options = parse_options(f"false negatives {spec!r}", params, FalseNegativeOptions)

    def weights(self, scores: torch.Tensor, batch, examples) -> torch.Tensor:
        """[n_queries, n_docs] weights, 1 everywhere but at each query's own hard negatives."""
        w = torch.ones_like(scores, dtype=torch.float32)
        for i, own in enumerate(batch.hard):
            if not own:
                continue
            if self.kind == "teacher":
                ex = examples[i]
                if not ex.scores or len(ex.scores.get("negatives", ())) != len(ex.negatives):
                    continue  # no teacher scores for this example: left as is
                s_p = max(ex.scores["positives"])
                s_n = torch.tensor([ex.scores["negatives"][j] for _, j in own])
            else:
                s_p = float(scores[i, batch.positive[i]].detach())
                s_n = scores[i, [c for c, _ in own]].detach().float()
            p_fn = torch.sigmoid((s_n - s_p) / self.options.tau)
            w[i, [c for c, _ in own]] = (1 - p_fn).clamp_min(self.options.min_weight)
        return w

    def adjust(self, scores: torch.Tensor, batch, examples) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.weights(scores, batch, examples)
        return scores + torch.log(w).to(scores.dtype), w

"""LLM rerankers (:class:`~rankwise.models.llm_reranker.LLMReranker`) through the one loop.

A batch is each query's candidate list (as a cross-encoder's). Listwise (FIRST): each list is shown
in a random order drawn from (seed, step, row), so the model cannot learn a position, and the
identifier logits come back in the list's columns: ``scores[q, c]``, trained with any list loss
(ListNet, LambdaLoss, ...). Groupwise: the same, with each passage's probe score in place of its
identifier logit. Pointwise: each pair's yes/no logit difference (or expected grade). Gradient
caching runs over lists (listwise, groupwise) or pairs (pointwise).

With ``reference=True`` (listwise), a list's scores are DPO's implicit rewards: each identifier's
log-probability of coming first (a log-softmax over the window) minus the frozen starting model's,
so IRPO, LiPO or DPO train against the starting model as their papers define them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from rankwise.families.base import Family, register_family
from rankwise.models.bi_encoder import TokenCount
from rankwise.models.llm_reranker import LLMReranker, is_llm_reranker_folder
from rankwise.training.batching import build_lists
from rankwise.training.grad_cache import Side


@register_family(LLMReranker)
class LLMFamily(Family):
    name = "llm-reranker"
    default_list_size = 8

    def __init__(self, model) -> None:
        super().__init__(model)
        self.step = 0
        self.reference = None  # the frozen starting model (reference=True)

    def prepare_training(self, examples, config) -> None:
        if self.model.config.reference and self.reference is None:
            import copy

            self.reference = copy.deepcopy(self.model).eval().requires_grad_(False)

    @property
    def module(self):
        return self.model.lm

    def begin_step(self, step: int, config) -> None:
        self.step = step

    def negatives_per_query(self, config, uses_hard: bool) -> int:
        size = config.list_size or self.default_list_size
        return min(config.negatives_per_query or size - 1, size - 1)

    def batch(self, examples, rng, config, n_negatives, extra, choose):
        size = config.list_size or self.default_list_size
        if self.model.config.mode != "pointwise" and size > self.model.config.window:
            from rankwise.errors import ConfigError

            raise ConfigError(f"list_size={size} is larger than the reranker's window {self.model.config.window}")
        return build_lists(examples, rng, size, n_hard=n_negatives, extra=extra, choose=choose)

    def forward_backward(self, batch, loss_of_scores, config, token_cache, check):
        mask, held = batch.mask.to(self.model.device), {}
        if self.model.config.mode == "pointwise":
            side = Side(self._pairs, batch.pairs())

            def combine(flat: torch.Tensor) -> torch.Tensor:
                return flat.new_zeros(mask.shape).masked_scatter(mask, flat)
        else:
            labels = batch.labels.tolist()
            rows = [(i, q, docs, labels[i]) for i, (q, docs) in enumerate(zip(batch.queries, batch.docs))]
            width, lm_weight = mask.shape[1], self.model.config.lm_weight
            side = Side(lambda chunk: self._lists(chunk, config.seed, width), rows)

            def combine(out: torch.Tensor) -> torch.Tensor:
                held["lm"] = out[:, width] if lm_weight else None  # FIRST's LM term rides in the last column
                return out[:, :width]

            if lm_weight:
                loss_of_scores = self._with_lm_term(loss_of_scores, held, lm_weight)
        return self.run_sides(
            [side],
            combine,
            loss_of_scores,
            config,
            check,
        )

    def _pairs(self, pairs):
        scores = self.model.pair_scores(pairs)
        n = sum(len(self.model.pointwise_prompt(q, d)) for q, d in pairs)
        return scores, TokenCount(n, n)

    @staticmethod
    def _with_lm_term(loss_of_scores, held: dict, weight: float):
        def loss(scores: torch.Tensor):
            value, info = loss_of_scores(scores)
            lm = held["lm"].mean()
            return value + weight * lm, info | {"lm_loss": float(lm)}

        return loss

    def _lists(self, rows, seed: int, width: int):
        """Each row's list scores in its columns, the list shown in a random order; with FIRST's LM
        term, each row's target-order NLL in one more column."""
        perms = [np.random.default_rng([seed, self.step, i]).permutation(len(docs)) for i, _, docs, _ in rows]
        shown = [[docs[j] for j in p] for p, (_, _, docs, _) in zip(perms, rows)]
        queries = [q for _, q, _, _ in rows]
        lm = None
        if self.model.config.lm_weight:
            # the target: shown positions, best label first, ties in the order shown
            orders = [sorted(range(len(p)), key=lambda k: (-labels[p[k]], k)) for p, (*_, labels) in zip(perms, rows)]
            logits, lm = self.model.window_logits_and_lm(queries, shown, orders)
        else:
            logits = self.model.list_scores(queries, shown)
        if self.reference is not None:
            logits = self._implicit_rewards(logits, queries, shown)
        out = logits.new_zeros((len(rows), width + (lm is not None)))
        for r, p in enumerate(perms):
            out[r, torch.as_tensor(p, device=out.device)] = logits[r, : len(p)]
        if lm is not None:
            out[:, width] = lm
        n = sum(len(self.model.list_prompt(q, d)) for q, d in zip(queries, shown))
        return out, TokenCount(n, n)

    def _implicit_rewards(self, logits: torch.Tensor, queries, shown) -> torch.Tensor:
        """log p(identifier first) under the model minus under the frozen reference, per window."""
        with torch.no_grad():
            ref = self.reference.list_scores(queries, shown)
        out = torch.zeros_like(logits)
        for r, docs in enumerate(shown):
            n = len(docs)
            out[r, :n] = logits[r, :n].log_softmax(-1) - ref[r, :n].log_softmax(-1)
        return out

    def lengths(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([len(x) for x in self.model.tokenizer(list(texts), truncation=True)["input_ids"]])

    def score(self, query: str, docs: Sequence[str], batch_size: int = 16) -> np.ndarray:
        return self.model.rank(query, docs, batch_size=batch_size)

    @classmethod
    def fresh(cls, config) -> LLMReranker:
        if config.model is None:
            from rankwise.errors import ConfigError

            raise ConfigError("an LLM reranker starts from a causal LM: give model= (a local folder or hub name)")
        return LLMReranker.from_pretrained(config.model)

    @classmethod
    def recognises(cls, path: Path) -> bool:
        return is_llm_reranker_folder(path)

    @classmethod
    def load(cls, path, *, device=None) -> LLMReranker:
        return LLMReranker.load(path, device=device)

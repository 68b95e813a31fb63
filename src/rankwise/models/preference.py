"""Ranked preference lists for language models: a causal LM's responses as a ranking problem.

Each response ``y`` to a prompt ``x`` gets the score ``s(x, y) = beta * (log pi(y | x) - log
pi_ref(y | x))``: the sequence log-likelihood ratio of the policy being trained against a frozen
reference (Rafailov et al., "Direct Preference Optimization", 2023). A prompt's responses form a
list, so every list loss of the library trains the policy: DPO is the two-item softmax
(``infonce:temperature=1`` on a (chosen, rejected) pair is ``-log sigmoid(s_w - s_l)``), LiPO-λ is
``lipo`` (Liu et al., "LiPO: Listwise Preference Optimization through Learning-to-Rank", 2024),
and ListMLE, LambdaLoss or ApproxNDCG come for free.

Data: JSONL of ``{"prompt": ..., "responses": [...], "labels": [...]}`` (higher label: better).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rankwise.data.jsonl import iter_jsonl
from rankwise.errors import DataError, RankwiseError
from rankwise.io import atomic_path
from rankwise.models.modes import evaluating


@dataclass
class PreferenceExample:
    """One prompt's responses and their grades. No document texts: the text parts of training
    (mined negatives, teachers) leave it as it is."""

    prompt: str
    responses: list[str]
    labels: list[float]
    query_id: str | None = None
    negatives: list = field(default_factory=list)
    scores: None = None
    positives: list = field(default_factory=list)

    @property
    def query(self) -> str:
        return self.prompt


def read_preferences(path: str | Path, *, lenient: bool = False) -> list[PreferenceExample]:
    """Preference lists from JSONL. A list with fewer than two responses, labels of another length,
    or only tied labels teaches no preference: an error naming file and line (``lenient``: skipped
    and counted in one warning)."""
    import logging

    path = Path(path)
    out: list[PreferenceExample] = []
    skipped: dict[str, int] = {}
    for line, obj in iter_jsonl(path):
        prompt, responses, labels = obj.get("prompt"), obj.get("responses"), obj.get("labels")
        problem, what = None, "responses"
        if not isinstance(prompt, str):
            problem, what = "expected a string", "prompt"
        elif not isinstance(responses, list) or not all(isinstance(r, str) for r in responses):
            problem = "expected a list of strings"
        elif len(responses) < 2:
            problem = f"{len(responses)} response(s): a preference list needs at least two"
        elif not isinstance(labels, list) or len(labels) != len(responses):
            problem, what = f"expected {len(responses)} labels, one per response", "labels"
        elif not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in labels):
            problem, what = "expected numbers", "labels"
        elif len(set(labels)) < 2:
            problem, what = "every response has the same label: no preference to learn", "labels"
        if problem is not None:
            if not lenient:
                raise DataError(problem, path=path, line=line, field=what)
            skipped[problem.split(":")[0]] = skipped.get(problem.split(":")[0], 0) + 1
            continue
        out.append(PreferenceExample(prompt, list(responses), [float(v) for v in labels], query_id=str(line)))
    if skipped:
        logging.getLogger(__name__).warning(
            "%s: skipped %d preference lists (%s)",
            path,
            sum(skipped.values()),
            "; ".join(f"{n}: {k}" for k, n in skipped.items()),
        )
    if not out:
        raise DataError("no preference lists", path=path)
    return out


class PreferenceModel(nn.Module):
    """A causal LM policy, its frozen reference and ``beta``: ``scores`` are ``beta`` times the
    log-likelihood ratio of each response given its prompt. Only the policy trains."""

    def __init__(
        self,
        policy: nn.Module,
        tokenizer,
        *,
        reference: nn.Module | None = None,
        beta: float = 0.1,
        max_length: int = 512,
    ) -> None:
        super().__init__()
        if not beta > 0:
            raise RankwiseError(f"beta must be > 0, got {beta}")
        self.policy, self.tokenizer, self.beta, self.max_length = policy, tokenizer, float(beta), max_length
        ref = reference if reference is not None else copy.deepcopy(policy)
        for p in ref.parameters():
            p.requires_grad_(False)
        self._reference = [ref.eval()]  # a list keeps it out of state_dict and parameters()
        self._ref_cache: dict[tuple[str, str], float] = {}

    @classmethod
    def load(cls, path: str | Path, *, reference: str | Path | None = None, beta: float = 0.1) -> PreferenceModel:
        """Any local causal-LM folder (the reference: the same folder unless given)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(str(path))
            policy = AutoModelForCausalLM.from_pretrained(str(path))
            ref = AutoModelForCausalLM.from_pretrained(str(reference or path))
        except (OSError, ValueError) as exc:
            raise RankwiseError(f"cannot load causal LM {str(path)!r}: {exc}".splitlines()[0]) from None
        return cls(policy, tokenizer, reference=ref, beta=beta)

    @property
    def reference(self) -> nn.Module:
        return self._reference[0]

    @property
    def device(self) -> torch.device:
        return next(self.policy.parameters()).device

    def _apply(self, fn, recurse=True):  # .to(device) moves the reference along
        self._reference[0] = self._reference[0]._apply(fn)
        return super()._apply(fn, recurse)

    def _encode(self, pairs: Sequence[tuple[str, str]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Input ids, attention mask and a mask of the response tokens (prompt tokens then response
        tokens, right-padded, the response cut to ``max_length`` in all)."""
        tok = self.tokenizer
        seqs, resp = [], []
        for prompt, response in pairs:
            p = tok(prompt, add_special_tokens=False)["input_ids"]
            r = tok(response, add_special_tokens=False)["input_ids"]
            if tok.eos_token_id is not None:
                r = r + [tok.eos_token_id]
            r = r[: max(1, self.max_length - len(p))]
            seqs.append(p + r)
            resp.append([0] * len(p) + [1] * len(r))
        n = max(len(s) for s in seqs)
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        ids = torch.full((len(seqs), n), pad, dtype=torch.long)
        att = torch.zeros(len(seqs), n, dtype=torch.long)
        rmask = torch.zeros(len(seqs), n, dtype=torch.bool)
        for i, (s, m) in enumerate(zip(seqs, resp)):
            ids[i, : len(s)] = torch.tensor(s)
            att[i, : len(s)] = 1
            rmask[i, : len(s)] = torch.tensor(m, dtype=torch.bool)
        return ids.to(self.device), att.to(self.device), rmask.to(self.device)

    @staticmethod
    def sequence_logprobs(model: nn.Module, ids: torch.Tensor, att: torch.Tensor, rmask: torch.Tensor) -> torch.Tensor:
        """``sum_t log p(y_t | x, y_<t)`` over each row's response tokens."""
        logits = model(input_ids=ids, attention_mask=att).logits[:, :-1].float()
        target = ids[:, 1:]
        lp = torch.log_softmax(logits, dim=-1).gather(-1, target[..., None])[..., 0]
        return (lp * rmask[:, 1:]).sum(dim=1)

    def scores(self, pairs: Sequence[tuple[str, str]]) -> torch.Tensor:
        """``beta * (log pi(y|x) - log pi_ref(y|x))`` of each (prompt, response), with gradients
        through the policy; the reference's log-likelihoods are computed once per pair and kept."""
        ids, att, rmask = self._encode(pairs)
        policy = self.sequence_logprobs(self.policy, ids, att, rmask)
        missing = [i for i, p in enumerate(pairs) if p not in self._ref_cache]
        if missing:
            with torch.no_grad():
                ref = self.sequence_logprobs(self.reference, ids[missing], att[missing], rmask[missing])
            for i, v in zip(missing, ref.tolist()):
                self._ref_cache[pairs[i]] = v
        ref_lp = torch.tensor([self._ref_cache[p] for p in pairs], device=policy.device, dtype=policy.dtype)
        return self.beta * (policy - ref_lp)

    def predict(self, prompt: str, responses: Sequence[str]) -> np.ndarray:
        with evaluating(self.policy):
            return self.scores([(prompt, r) for r in responses]).float().cpu().numpy()

    def save(self, path: str | Path) -> Path:
        """The policy as a transformers folder (``AutoModelForCausalLM`` loads it) and ``rankwise.json``."""
        path = Path(path)
        with atomic_path(path, is_dir=True) as tmp:
            self.policy.save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)
            (tmp / "rankwise.json").write_text(json.dumps({"kind": "preference", "beta": self.beta}))
        return path

"""Rerankers built on a causal language model (any ``AutoModelForCausalLM``).

* **Listwise, FIRST** (Reddy et al., "FIRST: Faster Improved Listwise Reranking with Single Token
  Decoding", EMNLP 2024): the window's passages are shown with identifiers ([a], [b], ...) and the
  relevance of each is the logit of its identifier as the *first* generated token; one forward
  pass ranks the window. Longer lists run in **sliding windows** from the bottom up, ``window``
  passages at a time moved ``stride`` at a time (RankGPT, RankZephyr), each window reordered by
  its logits; the final score is the reverse of the final position.
* **Pointwise**: relevance is ``logit("yes") - logit("no")`` after the pair's prompt, or, with
  ``grades=k``, ERank's expected grade sum_g g p(g) over the tokens "0".."k".
* **Groupwise** (after GroupRank): the query and a group of up to ``window`` passages in one
  prompt, each passage followed by a probe (``relevant:``); its score is read at the probe as
  pointwise scores are, so one forward pass scores the whole group and each passage is judged with
  the passages before it in view (a causal LM sees no later ones; training shuffles the order).
  Longer lists are cut into consecutive groups of ``window``.

Prompts are built from token ids (each passage cut to ``doc_tokens`` tokens), the same way in
training and inference. The model, tokenizer and these settings save to one folder
(``rankwise.json`` names the kind); :meth:`LLMReranker.load` reads it, and any local or hub causal
LM starts one (``LLMReranker.from_pretrained(name)``).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rankwise.errors import ConfigError, RankwiseError
from rankwise.io import atomic_path

LABELS = "abcdefghijklmnopqrst"  # window identifiers: single tokens in common vocabularies


@dataclass
class LLMRerankerConfig:
    mode: str = "listwise"  # listwise (FIRST) | pointwise | groupwise
    window: int = 20
    stride: int = 10
    doc_tokens: int = 64  # each passage's tokens in a prompt
    query_tokens: int = 32
    grades: int = 0  # pointwise: 0 -> yes/no logits; k -> expected grade over "0".."k"
    lm_weight: float = 0.0  # listwise training: FIRST's language-modelling loss on the target order, this weight
    decode: str = "first"  # listwise inference: first (FIRST's identifier logits) | permutation (generate the order)
    reference: bool = False  # listwise training: scores = log p(first) - the frozen starting model's (DPO's reward)

    def __post_init__(self) -> None:
        if self.mode not in ("listwise", "pointwise", "groupwise"):
            raise ConfigError(f"mode={self.mode}: expected listwise, pointwise or groupwise", param="mode")
        if self.decode not in ("first", "permutation"):
            raise ConfigError(f"decode={self.decode}: expected first or permutation", param="decode")
        if self.reference and self.mode != "listwise":
            raise ConfigError("reference: a frozen reference scores listwise windows only", param="reference")
        if self.lm_weight < 0 or (self.lm_weight and self.mode != "listwise"):
            raise ConfigError(f"lm_weight={self.lm_weight}: a weight >= 0, for listwise rerankers", param="lm_weight")
        if not 2 <= self.window <= len(LABELS) or not 1 <= self.stride <= self.window:
            raise ConfigError(f"window={self.window}, stride={self.stride}: need 2 <= window <= {len(LABELS)}")


def is_llm_reranker_folder(path: Path) -> bool:
    own = Path(path) / "rankwise.json"
    try:
        return json.loads(own.read_text()).get("kind") == "llm-reranker"
    except (OSError, ValueError):
        return False


class LLMReranker(nn.Module):
    """A causal LM that ranks passages (module docstring)."""

    def __init__(self, lm: nn.Module, tokenizer, config: LLMRerankerConfig | None = None, name: str = "") -> None:
        super().__init__()
        self.lm, self.tokenizer = lm, tokenizer
        self.config = config or LLMRerankerConfig()
        self.name = name or getattr(lm.config, "_name_or_path", "") or "llm-reranker"
        self.label_ids = self._single_tokens(LABELS)
        self.answer_ids = self._single_tokens(
            [str(g) for g in range(self.config.grades + 1)] if self.config.grades else ["yes", "no"]
        )

    # ---------------------------------------------------------------- building
    @classmethod
    def from_pretrained(
        cls, name_or_path: str | Path, *, device: str | None = None, dtype: str = "float32", **options
    ) -> LLMReranker:
        """A fresh reranker on any causal LM (a local folder, a hub name, or a LoRA adapter folder,
        which loads onto the base model it names). ``dtype="bfloat16"`` halves the memory for
        inference on a GPU; training in bf16 is the loop's autocast (``TrainConfig(bf16=True)``)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from rankwise.device import resolve_device

        if dtype not in ("float32", "bfloat16", "float16"):
            raise ConfigError(f"dtype={dtype}: expected float32, bfloat16 or float16", param="dtype")
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(name_or_path))
            lm = AutoModelForCausalLM.from_pretrained(str(name_or_path), dtype=getattr(torch, dtype))
        except (OSError, ValueError) as exc:
            raise RankwiseError(f"cannot load causal LM {str(name_or_path)!r}: {exc}") from None
        return cls(lm.to(resolve_device(device)).eval(), tokenizer, LLMRerankerConfig(**options), str(name_or_path))

    @classmethod
    def load(cls, path: str | Path, *, device: str | None = None) -> LLMReranker:
        """A reranker saved by :meth:`save` (its settings from ``rankwise.json``)."""
        path = Path(path)
        if not is_llm_reranker_folder(path):
            raise RankwiseError(f"{path}: not an LLM reranker folder (rankwise.json with kind llm-reranker)")
        extra = json.loads((path / "rankwise.json").read_text())
        model = cls.from_pretrained(path, device=device, **extra["config"])
        model.name = extra.get("base_model", model.name)
        return model

    @classmethod
    def from_spec(cls, spec: str, *, device: str | None = None) -> LLMReranker:
        """``"llm:MODEL,mode=pointwise,window=20,..."``: a causal LM (folder or hub name) or a saved
        LLM reranker (its settings, overridden by those given) with :class:`LLMRerankerConfig`'s options."""
        from rankwise.spec import parse_options, parse_term

        term = parse_term(spec, "reranker llm")
        params = dict(term.params)
        source = term.variant or params.pop("model", None)
        if term.name != "llm" or not source:
            raise ConfigError(f"reranker {spec!r}: expected llm:MODEL[,mode=listwise|pointwise|groupwise,...]")
        saved = {}
        if is_llm_reranker_folder(Path(source)):
            saved = json.loads((Path(source) / "rankwise.json").read_text())["config"]
        fixed = {k: v for k, v in saved.items() if k not in params}
        config = parse_options("reranker llm", params, LLMRerankerConfig, **fixed)
        return cls.from_pretrained(source, device=device, **asdict(config))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        with atomic_path(path, is_dir=True) as tmp:
            self.lm.save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)
            info = {"kind": "llm-reranker", "config": asdict(self.config), "base_model": self.name}
            (tmp / "rankwise.json").write_text(json.dumps(info, indent=2))
        return path

    def _single_tokens(self, words: Sequence[str]) -> list[int]:
        ids = []
        for w in words:
            toks = self.tokenizer(w, add_special_tokens=False)["input_ids"]
            if len(toks) != 1:
                raise RankwiseError(f"{w!r} is {len(toks)} tokens in this tokenizer; identifiers must be one token")
            ids.append(toks[0])
        if len(set(ids)) != len(ids):
            raise RankwiseError("identifier tokens collide in this tokenizer")
        return ids

    @property
    def device(self) -> torch.device:
        return next(self.lm.parameters()).device

    # ---------------------------------------------------------------- prompts
    def _ids(self, text: str, limit: int | None = None) -> list[int]:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids[:limit] if limit else ids

    def listwise_prompt(self, query: str, docs: Sequence[str]) -> list[int]:
        """FIRST's prompt, whose next token is the identifier of the most relevant passage."""
        ids = self._ids(f"rank the {len(docs)} passages by relevance to the query.\n")
        for label, doc in zip(LABELS, docs):
            ids += self._ids(f"[{label}] ") + self._ids(doc, self.config.doc_tokens) + self._ids("\n")
        return ids + self._ids("query: ") + self._ids(query, self.config.query_tokens) + self._ids("\nbest: [")

    def pointwise_prompt(self, query: str, doc: str) -> list[int]:
        ids = self._ids("query: ") + self._ids(query, self.config.query_tokens) + self._ids("\npassage: ")
        return ids + self._ids(doc, self.config.doc_tokens) + self._ids("\nrelevant: ")

    def group_prompt(self, query: str, docs: Sequence[str]) -> tuple[list[int], list[int]]:
        """The groupwise prompt and, per passage, the position of its probe's last token: the query
        first, then each passage followed by its probe, so a passage is judged with the query and
        the passages before it in view."""
        ids = self._ids(f"judge each of the {len(docs)} passages for relevance to the query.\nquery: ")
        ids += self._ids(query, self.config.query_tokens) + self._ids("\n")
        probes = []
        for label, doc in zip(LABELS, docs):
            ids += self._ids(f"[{label}] ") + self._ids(doc, self.config.doc_tokens) + self._ids("\nrelevant: ")
            probes.append(len(ids) - 1)
        return ids, probes

    def logits_at(self, prompts: Sequence[list[int]], positions: Sequence[Sequence[int]]) -> list[torch.Tensor]:
        """Per prompt, the next-token logits [len(positions[i]), vocab] at the given positions
        (right-padded batch, so each prompt's positions are its own; only the needed rows of the
        vocabulary projection are computed where the model takes ``logits_to_keep``)."""
        longest = max(len(p) for p in prompts)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ids = torch.full((len(prompts), longest), pad, dtype=torch.long)
        mask = torch.zeros((len(prompts), longest), dtype=torch.long)
        for i, p in enumerate(prompts):
            ids[i, : len(p)], mask[i, : len(p)] = torch.tensor(p), 1
        keep = sorted({j for pos in positions for j in pos})
        inputs = {"input_ids": ids.to(self.device), "attention_mask": mask.to(self.device)}
        base = self.lm.get_base_model() if hasattr(self.lm, "get_base_model") else self.lm  # under peft's wrapper
        if "logits_to_keep" in inspect.signature(base.forward).parameters:
            out = self.lm(**inputs, logits_to_keep=torch.tensor(keep, device=self.device)).logits
            column = {j: c for c, j in enumerate(keep)}
        else:  # a model without it: every position's logits
            out = self.lm(**inputs).logits
            column = {j: j for j in keep}
        return [out[i, [column[j] for j in pos]] for i, pos in enumerate(positions)]

    def next_token_logits(self, prompts: Sequence[list[int]]) -> torch.Tensor:
        """[len(prompts), vocab]: the logits after each prompt's last token."""
        return torch.cat(self.logits_at(prompts, [[len(p) - 1] for p in prompts]))

    def _answer_scores(self, logits: torch.Tensor) -> torch.Tensor:
        """A passage's score from the logits after its probe: yes - no, or the expected grade."""
        logits = logits[:, self.answer_ids]
        if self.config.grades:
            grades = torch.arange(self.config.grades + 1, device=logits.device, dtype=logits.dtype)
            return (logits.softmax(-1) * grades).sum(-1)
        return logits[:, 0] - logits[:, 1]

    # ---------------------------------------------------------------- scores
    def window_logits(self, queries: Sequence[str], lists: Sequence[Sequence[str]]) -> torch.Tensor:
        """FIRST scores: [queries, longest list] identifier logits (with gradients), 0 past a list's end."""
        logits = self.next_token_logits([self.listwise_prompt(q, d) for q, d in zip(queries, lists)])
        width = max(len(d) for d in lists)
        out = logits.new_zeros((len(lists), width))
        for i, docs in enumerate(lists):
            out[i, : len(docs)] = logits[i, self.label_ids[: len(docs)]]
        return out

    def pair_scores(self, pairs: Sequence[tuple[str, str]]) -> torch.Tensor:
        """Pointwise scores of (query, passage) pairs (with gradients)."""
        return self._answer_scores(self.next_token_logits([self.pointwise_prompt(q, d) for q, d in pairs]))

    def group_scores(self, queries: Sequence[str], groups: Sequence[Sequence[str]]) -> torch.Tensor:
        """Groupwise scores: [queries, largest group] (with gradients), 0 past a group's end."""
        built = [self.group_prompt(q, d) for q, d in zip(queries, groups)]
        logits = self.logits_at([ids for ids, _ in built], [probes for _, probes in built])
        out = logits[0].new_zeros((len(groups), max(len(d) for d in groups)))
        for i, rows in enumerate(logits):
            out[i, : rows.shape[0]] = self._answer_scores(rows)
        return out

    def target_ids(self, order: Sequence[int]) -> list[int]:
        """FIRST's generation target after ``best: [``: the identifiers best first, ``a] > [c] > [b]``."""
        return self._ids("] > [".join(LABELS[j] for j in order) + "]")

    def window_logits_and_lm(
        self, queries: Sequence[str], lists: Sequence[Sequence[str]], orders: Sequence[Sequence[int]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """FIRST's training pass: the identifier logits (as :meth:`window_logits`) and each list's
        mean negative log-likelihood of its target order (teacher forcing), from one forward pass
        over prompt + target (the prompt's last logits do not see the target: the LM is causal)."""
        prompts = [self.listwise_prompt(q, d) for q, d in zip(queries, lists)]
        targets = [self.target_ids(o) for o in orders]
        full = [p + t for p, t in zip(prompts, targets)]
        positions = [list(range(len(p) - 1, len(f) - 1)) for p, f in zip(prompts, full)]
        logits = self.logits_at(full, positions)  # position len(p)-1+t predicts target token t
        scores = logits[0].new_zeros((len(lists), max(len(d) for d in lists)))
        nll = logits[0].new_zeros(len(lists))
        for i, (rows, t) in enumerate(zip(logits, targets)):
            scores[i, : len(lists[i])] = rows[0, self.label_ids[: len(lists[i])]]
            nll[i] = torch.nn.functional.cross_entropy(rows, torch.tensor(t, device=rows.device))
        return scores, nll

    def list_scores(self, queries: Sequence[str], lists: Sequence[Sequence[str]]) -> torch.Tensor:
        """A whole list's scores in one pass: FIRST's identifier logits, or the group's probe scores."""
        return (
            self.group_scores(queries, lists) if self.config.mode == "groupwise" else self.window_logits(queries, lists)
        )

    def list_prompt(self, query: str, docs: Sequence[str]) -> list[int]:
        return (
            self.group_prompt(query, docs)[0] if self.config.mode == "groupwise" else self.listwise_prompt(query, docs)
        )

    @torch.no_grad()
    def rank(self, query: str, docs: Sequence[str], batch_size: int = 16) -> np.ndarray:
        """Scores for ``docs`` (higher first): pointwise scores, or for a listwise model the reverse
        of each document's final position after the sliding windows."""
        if not docs:
            return np.zeros(0, dtype=np.float32)
        if self.config.mode == "pointwise":
            pairs = [(query, d) for d in docs]
            parts = [
                self.pair_scores(pairs[i : i + batch_size]).float().cpu() for i in range(0, len(pairs), batch_size)
            ]
            return torch.cat(parts).numpy()
        if self.config.mode == "groupwise":
            w = self.config.window
            groups = [list(docs[i : i + w]) for i in range(0, len(docs), w)]
            flat = []
            for chunk in _chunks(groups, batch_size):
                part = self.group_scores([query] * len(chunk), chunk)
                flat += [row[: len(g)] for row, g in zip(part, chunk)]
            return torch.cat(flat).float().cpu().numpy()
        order = self.sliding_order(query, docs)
        scores = np.empty(len(docs), dtype=np.float32)
        scores[order] = np.arange(len(docs), 0, -1, dtype=np.float32)
        return scores

    @torch.no_grad()
    def sliding_order(self, query: str, docs: Sequence[str]) -> list[int]:
        """Document indices best first: windows of ``window`` from the end of the list to its start,
        ``stride`` apart, each reordered by its identifier logits (one pass when the list fits)."""
        order = list(range(len(docs)))
        w, s = self.config.window, self.config.stride
        start = max(len(order) - w, 0)
        while True:
            idx = order[start : start + w]
            order[start : start + w] = [idx[j] for j in self.window_order(query, [docs[i] for i in idx])]
            if start == 0:
                return order
            start = max(start - s, 0)

    @torch.no_grad()
    def window_order(self, query: str, docs: Sequence[str]) -> list[int]:
        """One window's order, best first: by the identifier logits (``decode="first"``), or the
        permutation the LM generates greedily after ``best: [`` (RankGPT, RankZephyr), read as the
        window's identifiers in the order generated, repeats dropped and those never generated
        appended in their window order."""
        if self.config.decode == "first":
            logits = self.window_logits([query], [docs])[0, : len(docs)]
            return sorted(range(len(docs)), key=lambda j: (-float(logits[j]), j))
        prompt = torch.tensor([self.listwise_prompt(query, docs)], device=self.device)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        out = self.lm.generate(
            input_ids=prompt,
            attention_mask=torch.ones_like(prompt),
            max_new_tokens=len(self.target_ids(range(len(docs)))),
            do_sample=False,
            pad_token_id=pad,
        )
        return parse_permutation(out[0, prompt.shape[1] :].tolist(), self.label_ids[: len(docs)])

    def __repr__(self) -> str:
        c = self.config
        return f"LLMReranker({self.name!r}, {c.mode}, window={c.window}, stride={c.stride})"


def _chunks(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def parse_permutation(generated: Sequence[int], label_ids: Sequence[int]) -> list[int]:
    """Window positions in the order their identifier tokens appear in ``generated`` (first
    appearance only), then every position never generated, in window order."""
    position = {t: j for j, t in enumerate(label_ids)}
    seen = list(dict.fromkeys(position[t] for t in generated if t in position))
    return seen + [j for j in range(len(label_ids)) if j not in set(seen)]

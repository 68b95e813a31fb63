"""A masked-LM head for SPLADE when the checkpoint has none (a sentence-transformers model).

A dense checkpoint such as all-MiniLM-L6-v2 has no masked-LM transform, so transformers draws one:
its logits are noise around zero, about 29,000 of 30,522 terms are active in every text, a query-
document score is ~26,000 and InfoNCE is saturated from the first step (benchmarks/README.md,
"Sparse and multi-vector against the peer"). rankwise's answer, before contrastive training:

1. **Fit the drawn parameters to name each token** (backbone frozen, dropout off): cross-entropy of
   the head's logits at every non-special position against the token there, the decoder tied to the
   word embeddings and frozen, so the transform learns to map a contextual state back onto the
   vocabulary as a masked-LM head does (without masking: the start should be lexical).
2. **Shift every vocabulary bias by one constant** so a text has, on average over a sample,
   ``expansion`` x its distinct non-special tokens active terms (``log(1 + relu(.))`` is zero below
   the shift): SPLADE starts sparse and near a lexical match instead of saturated.
3. **Optionally, shape the pooled document weights toward BM25** (``bm25_steps``): squared error
   between each document's max-pooled weights and BM25's term-frequency part of its word pieces,
   ``tf (k1 + 1) / (tf + k1 (1 - b + b |d| / avgdl))`` where the piece occurs and zero elsewhere
   (no labels: only the texts, as BM25 reads them). With an inference-free query table at the IDF,
   the start then scores close to BM25 over word pieces (docs/sparse-and-multi-vector.md gives a
   pilot; benchmarks/inference_free_bm25.py measures it).

Only the parameters the checkpoint lacked change (``SparseEncoder.fresh_parameters``); they are
then saved with the model, so a folder written afterwards loads with no fresh parameters.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rankwise.errors import RankwiseError
from rankwise.models.modes import evaluating


@dataclass(frozen=True)
class HeadFit:
    """What :func:`fit_fresh_head` did."""

    steps: int
    loss: float  # the last step's cross-entropy
    accuracy: float  # the last step's top-1 accuracy at naming the token
    shift: float  # added to every vocabulary bias
    nonzeros: float  # the mean active terms per text it aimed at
    bm25_loss: float | None = None  # the last BM25-shaping step's squared error (None: not shaped)


def fit_fresh_head(
    model,
    texts: Sequence[str],
    *,
    steps: int = 60,
    texts_per_step: int = 32,
    lr: float = 1e-3,
    expansion: float = 1.0,
    seed: int = 0,
    bm25_steps: int = 0,
    bm25_texts_per_step: int = 16,
    bm25_lr: float = 3e-4,
) -> HeadFit:
    """Fit ``model``'s fresh masked-LM parameters on ``texts`` (documents) and shift its biases.

    ``model``: a :class:`~rankwise.models.SparseEncoder` whose output layer is a plain ``Linear``
    with a bias (every masked-LM head in transformers). Draws from its own generator (``seed``), so
    the global random state a training run resumes from is untouched; leaves every parameter's
    ``requires_grad`` as it was and its gradient at None. ``bm25_steps`` > 0 adds step 3 (the
    module's docstring) on the same texts, at the model's document length.
    """
    names = set(model.fresh_parameters)
    head = model.mlm.get_output_embeddings()
    if not names or not texts:
        raise RankwiseError("fit_fresh_head: the model has no fresh masked-LM parameters, or no texts were given")
    if head.bias is None or not model._pooled_head():
        raise RankwiseError(
            "fit_fresh_head: the masked LM's output layer is not a plain Linear with a bias whose logits the "
            "model returns as they are; train from the drawn head (head_fit_steps=0)"
        )
    ids = model.token_ids(list(dict.fromkeys(texts)), "doc")
    special = torch.tensor(sorted(model.tokenizer.all_special_ids), device=model.device)
    gen = torch.Generator().manual_seed(seed)
    trainable = {n: p.requires_grad for n, p in model.mlm.named_parameters()}
    params = [p for n, p in model.mlm.named_parameters() if n in names]
    for n, p in model.mlm.named_parameters():
        p.requires_grad_(n in names)
    try:
        loss, accuracy = _fit(model, ids, special, params, steps, texts_per_step, lr, gen)
        shift, target = _sparsity_shift(model, ids, special, expansion, gen)
        bm25 = _shape_to_bm25(model, ids, params, bm25_steps, bm25_texts_per_step, bm25_lr, gen) if bm25_steps else None
    finally:
        for n, p in model.mlm.named_parameters():
            p.requires_grad_(trainable[n])
            p.grad = None  # the fit's last gradients must not reach the training run's first step
    model.fresh_parameters = ()
    return HeadFit(steps, loss, accuracy, shift, target, bm25)


def _batch(model, ids: list[list[int]], pick: list[int]) -> dict[str, torch.Tensor]:
    enc = model.tokenizer.pad({"input_ids": [ids[i] for i in pick]}, return_tensors="pt")
    return {k: v.to(model.device) for k, v in enc.items()}


def _fit(model, ids, special, params, steps, texts_per_step, lr, gen) -> tuple[float, float]:
    head = model.mlm.get_output_embeddings()
    opt = torch.optim.Adam(params, lr=lr)
    loss, accuracy = float("nan"), float("nan")
    with evaluating(model, grad=True):
        for _ in range(steps):
            batch = _batch(model, ids, torch.randint(len(ids), (texts_per_step,), generator=gen).tolist())
            keep = batch["attention_mask"].bool() & ~torch.isin(batch["input_ids"], special)
            logits = head(model.head_states(batch)[keep])
            target = batch["input_ids"][keep]
            value = F.cross_entropy(logits, target)
            opt.zero_grad(set_to_none=True)
            value.backward()
            opt.step()
            loss, accuracy = float(value.detach()), float((logits.argmax(1) == target).float().mean())
    return loss, accuracy


def _sparsity_shift(model, ids, special, expansion, gen, sample: int = 256, chunk: int = 32) -> tuple[float, float]:
    """Add to every bias the constant that leaves ``expansion`` x the mean distinct tokens active
    per text over a sample (the k-th largest of the sample's max-pooled logits, k = texts x target)."""
    head = model.mlm.get_output_embeddings()
    pick = torch.randperm(len(ids), generator=gen)[:sample].tolist()
    special_ids = set(special.tolist())
    target = expansion * sum(len(set(ids[i]) - special_ids) for i in pick) / len(pick)
    maxima = []
    with evaluating(model):
        for start in range(0, len(pick), chunk):
            batch = _batch(model, ids, pick[start : start + chunk])
            logits = head(model.head_states(batch))
            maxima.append(logits.masked_fill(~batch["attention_mask"].bool().unsqueeze(-1), -torch.inf).amax(1))
    pooled = torch.cat(maxima).flatten()
    k = min(pooled.numel(), max(1, round(target * len(pick))))
    shift = -float(torch.topk(pooled, k).values[-1])
    with torch.no_grad():
        head.bias += shift
    return shift, target


def bm25_term_weights(
    ids: list[list[int]], special: set[int], k1: float = 1.5, b: float = 0.75
) -> list[dict[int, float]]:
    """BM25's term-frequency part of each text's non-special pieces, ``{piece: weight}`` (the
    Robertson form, with its ``k1 + 1``), length-normalised by the texts' mean length.

    Lengths 3 and 1 (id 0 is special), avgdl 2: the first text's norm is 1.5 (0.25 + 0.75 x 1.5) =
    2.0625, so piece 5 (tf 2) weighs 2 x 2.5 / 4.0625 and piece 7 2.5 / 3.0625; the second's norm
    is 0.9375:

    >>> [{t: round(w, 4) for t, w in x.items()} for x in bm25_term_weights([[7, 5, 5, 0], [5]], {0})]
    [{5: 1.2308, 7: 0.8163}, {5: 1.2903}]
    """
    pieces = [[t for t in x if t not in special] for x in ids]
    avgdl = sum(map(len, pieces)) / max(len(pieces), 1)
    out = []
    for x in pieces:
        norm = k1 * (1 - b + b * len(x) / max(avgdl, 1e-9))
        out.append({t: tf * (k1 + 1) / (tf + norm) for t, tf in sorted(Counter(x).items())})
    return out


def _shape_to_bm25(model, ids, params, steps: int, texts_per_step: int, lr: float, gen) -> float:
    """Step 3: the pooled document weights toward :func:`bm25_term_weights`; the last step's loss."""
    targets = bm25_term_weights(ids, set(model.tokenizer.all_special_ids))
    opt = torch.optim.Adam(params, lr=lr)
    value = torch.tensor(float("nan"))
    with evaluating(model, grad=True):
        for _ in range(steps):
            pick = torch.randint(len(ids), (texts_per_step,), generator=gen).tolist()
            pooled = model._vectors([ids[i] for i in pick], "doc")
            goal = torch.zeros_like(pooled)
            for row, i in enumerate(pick):
                terms = targets[i]
                goal[row, list(terms)] = torch.tensor(list(terms.values()), device=goal.device)
            value = ((pooled - goal) ** 2).sum(1).mean()
            opt.zero_grad(set_to_none=True)
            value.backward()
            opt.step()
    return float(value.detach())

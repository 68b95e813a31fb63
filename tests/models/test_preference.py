"""Preference lists for language models: DPO through the adapter equals the published formula;
LiPO-λ on 4-response lists trains; bad preference files are named by file and line."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import rankwise.losses as L
from rankwise.errors import DataError
from rankwise.models.preference import PreferenceExample, PreferenceModel, read_preferences
from rankwise.training import TrainConfig, train


@pytest.fixture(scope="module")
def tiny_lm():
    """A 2-layer random GPT-2 with the default model's (word-piece) tokenizer: no weights needed."""
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from rankwise.models import default_model_path

    tok = AutoTokenizer.from_pretrained(str(default_model_path()))
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=tok.vocab_size, n_positions=128, n_embd=32, n_layer=2, n_head=2)
    cfg.resid_pdrop = cfg.embd_pdrop = cfg.attn_pdrop = 0.0
    return GPT2LMHeadModel(cfg), tok


def logprob(model, tok, prompt, response) -> float:
    """log pi(response | prompt), one sequence at a time, token by token."""
    p = tok(prompt, add_special_tokens=False)["input_ids"]
    r = tok(response, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([p + r])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].double()
    lp = torch.log_softmax(logits, -1)
    return float(sum(lp[len(p) + t - 1, r[t]] for t in range(len(r))))


def test_dpo_through_the_adapter_equals_the_published_formula(tiny_lm):
    lm, tok = tiny_lm
    ref = type(lm)(lm.config)
    ref.load_state_dict(lm.state_dict())
    with torch.no_grad():  # a policy that differs from its reference
        for p in lm.parameters():
            p.add_(0.02 * torch.randn_like(p))
    beta = 0.3
    model = PreferenceModel(lm, tok, reference=ref, beta=beta)
    prompt, chosen, rejected = "what is two plus two", "four", "the sky is green today"
    scores = model.scores([(prompt, chosen), (prompt, rejected)])
    loss = L.get("infonce:temperature=1.0")(scores[None], torch.tensor([[1.0, 0.0]]))
    margin = beta * (
        (logprob(lm, tok, prompt, chosen) - logprob(ref, tok, prompt, chosen))
        - (logprob(lm, tok, prompt, rejected) - logprob(ref, tok, prompt, rejected))
    )
    published = -math.log(1 / (1 + math.exp(-margin)))  # -log sigmoid(beta * (ratio_w - ratio_l))
    assert loss.item() == pytest.approx(published, abs=1e-6)
    # a fresh policy equal to its reference scores every response 0: DPO starts at log 2
    same = PreferenceModel(ref, tok, beta=beta)
    assert same.predict(prompt, [chosen, rejected]) == pytest.approx([0.0, 0.0], abs=1e-6)


def test_lipo_on_four_response_lists_trains(tiny_lm):
    lm, tok = tiny_lm
    torch.manual_seed(1)
    model = PreferenceModel(type(lm)(lm.config), tok, beta=0.5)
    examples = [
        PreferenceExample(f"prompt {i}", ["best answer", "good answer", "poor answer", "wrong answer"], [3, 2, 1, 0])
        for i in range(4)
    ]
    res = train(model, examples, TrainConfig(loss="lipo", batch_size=4, steps=6, lr=1e-3), log=lambda _: None)
    losses = [h.loss for h in res.history]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0], losses
    s = model.predict("prompt 0", examples[0].responses)
    assert s[0] > s[3]  # the best response now outscores the wrong one


@pytest.mark.parametrize(
    ("row", "match"),
    [
        ({"prompt": "p", "responses": ["a"], "labels": [1]}, r"2, field 'responses': 1 response\(s\)"),
        ({"prompt": "p", "responses": ["a", "b"], "labels": [1, 1]}, r"2, field 'labels': every response has the same"),
        ({"prompt": "p", "responses": ["a", "b"], "labels": [1]}, r"2, field 'labels': expected 2 labels"),
        ({"prompt": 3, "responses": ["a", "b"], "labels": [1, 0]}, r"2, field 'prompt'"),
    ],
)
def test_bad_preference_lists_are_named(tmp_path, row, match):
    path = tmp_path / "prefs.jsonl"
    good = {"prompt": "p", "responses": ["a", "b"], "labels": [1, 0]}
    path.write_text(json.dumps(good) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(DataError, match=r"prefs\.jsonl:" + match):
        read_preferences(path)
    assert len(read_preferences(path, lenient=True)) == 1

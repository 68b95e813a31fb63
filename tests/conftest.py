"""Shared fixtures: a tiny random BERT (fast), small BEIR folders, the shared benchmark data path."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]


def run_cli(monkeypatch, capsys, *args) -> tuple[int, str]:
    """Run ``rankwise ARGS`` in-process: (exit code, everything printed)."""
    import sys

    from rankwise.cli import app

    monkeypatch.setattr(sys, "argv", ["rankwise", *map(str, args)])
    code = 0
    try:
        app()
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out + out.err


SHARED_DATA = REPO.parent / "shared" / "data"


def assert_grads_close(got, want, what: object = "") -> None:
    """Gradients of one computation summed in another order (chunks, processes) agree to float32 rounding.

    A reordered float32 sum is off by a few ulps of its largest terms, not of its result: an entry
    that nearly cancels (0.017 among entries near 1000) moves by ~1e-5 on some CPUs. So the absolute
    slack scales with the tensor's largest entry (1e-6 of it, ~8 float32 ulps), and every entry must
    also match to 1e-4 relative; a lost or doubled contribution is off by the gradient itself.
    """
    import torch

    torch.testing.assert_close(
        got, want, atol=1e-6 * float(want.abs().max()) + 1e-8, rtol=1e-4, msg=lambda m: f"{what}: {m}"
    )


def make_tiny_bert(path: Path, **config) -> Path:
    """A 2-layer, 32-wide BERT with the default model's tokenizer, saved as a transformers folder."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from rankwise.models import default_model_path

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(str(default_model_path()))
    cfg = BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        **config,
    )
    BertModel(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def make_tiny_causal_lm(path: Path | None = None, **config):
    """A 1-layer, 32-wide Llama with the default model's tokenizer: ``(lm, tokenizer)``, also saved
    as a transformers folder when ``path`` is given."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from rankwise.models import default_model_path

    tok = AutoTokenizer.from_pretrained(str(default_model_path()))
    torch.manual_seed(0)
    settings = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2) | config
    cfg = LlamaConfig(
        vocab_size=tok.vocab_size, num_key_value_heads=settings["num_attention_heads"], max_position_embeddings=512,
        pad_token_id=tok.pad_token_id, **settings,
    )  # fmt: skip
    lm = LlamaForCausalLM(cfg).eval()
    if path is not None:
        lm.save_pretrained(path)
        tok.save_pretrained(path)
    return lm, tok


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def write_beir(folder: Path, corpus: list[dict], queries: list[dict], qrels: dict[str, list[tuple]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in corpus))
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (folder / "qrels").mkdir(exist_ok=True)
    for split, rows in qrels.items():
        (folder / "qrels" / f"{split}.tsv").write_text(
            "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{r}\n" for q, d, r in rows)
        )
    return folder


@pytest.fixture()
def toy_beir(tmp_path) -> Path:
    """Eight documents about distinct topics, four queries, train and test qrels."""
    topics = [
        "apples are red fruit",
        "the ocean is deep and blue",
        "python parses source code",
        "trains run on rails",
        "violins have four strings",
        "volcanoes erupt hot lava",
        "bees make sweet honey",
        "snow falls in winter",
    ]
    corpus = [{"_id": f"d{i}", "title": f"T{i}" if i % 2 else "", "text": t} for i, t in enumerate(topics)]
    queries = [{"_id": f"q{i}", "text": t.split()[0] + " facts"} for i, t in enumerate(topics)]
    qrels = {
        "train": [(f"q{i}", f"d{i}", 1) for i in range(4)],
        "test": [("q4", "d4", 2), ("q4", "d5", 0), ("q5", "d5", 1), ("q6", "d6", 1), ("q7", "d7", 1)],
    }
    return write_beir(tmp_path / "toy", corpus, queries, qrels)

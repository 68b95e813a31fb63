"""Exact search over Matryoshka prefixes and int8 / binary codes: scores and bytes by hand, and the
frontier of ``rankwise eval --dims --precision``."""

import json

import numpy as np
import pytest

import rankwise as rw
from rankwise.data import load_beir
from rankwise.index.quantized import QuantizedIndex, prefix
from tests.conftest import run_cli


def test_codes_scores_and_bytes_by_hand():
    rng = np.random.default_rng(0)
    docs, queries = rng.normal(size=(50, 20)).astype(np.float32), rng.normal(size=(3, 20)).astype(np.float32)
    fp32 = QuantizedIndex.build(docs, "fp32")
    np.testing.assert_allclose(fp32.scores(queries), queries @ docs.T, rtol=1e-6)
    binary = QuantizedIndex.build(docs, "binary")
    np.testing.assert_array_equal(binary.scores(queries), np.sign(queries) @ np.sign(docs).T)  # +-1 dot products
    int8 = QuantizedIndex.build(docs, "int8")
    scale = np.abs(docs).max(axis=0) / 127  # per dimension, from the corpus; queries clipped to it
    by_hand = (np.clip(np.round(queries / scale), -127, 127) * scale) @ (np.round(docs / scale) * scale).T
    np.testing.assert_allclose(int8.scores(queries), by_hand, rtol=1e-4, atol=1e-4)
    assert np.corrcoef(int8.scores(queries).ravel(), (queries @ docs.T).ravel())[0, 1] > 0.99
    assert (fp32.nbytes, int8.nbytes, binary.nbytes) == (50 * 20 * 4, 50 * 20 + 20 * 4, 50 * 3)
    rows, scores = fp32.search(queries, 5)
    want = np.argsort(-(queries @ docs.T), axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(rows, want)
    unit = prefix(np.array([[3.0, 4.0, 12.0]]), 2, normalize=True)
    np.testing.assert_allclose(unit, [[0.6, 0.8]])


def _overlap(index, docs, queries, k=10):
    exact = np.argsort(-(queries @ docs.T), axis=1)[:, :k]
    rows, _ = index.search(queries, k)
    return np.mean([len(set(a) & set(b)) / k for a, b in zip(rows, exact)])


def test_binary_itq_centres_rotates_and_beats_plain_signs():
    """Embeddings with a shared mean direction and variance piled into the first axes (what a
    principal-axes rotation gives): plain sign bits lose most of the ranking, ITQ's far less."""
    rng = np.random.default_rng(0)
    spread = np.geomspace(4.0, 0.05, 32)
    docs = rng.normal(size=(2000, 32)) * spread + 0.5
    queries = rng.normal(size=(100, 32)) * spread + 0.5
    docs, queries = prefix(docs, 32, True), prefix(queries, 32, True)
    itq = QuantizedIndex.build(docs, "binary-itq")
    centred = docs - docs.mean(axis=0)
    a, b = itq.itq.apply(centred[:2] + docs.mean(axis=0))
    cos = centred[0] @ centred[1] / np.linalg.norm(centred[0]) / np.linalg.norm(centred[1])
    assert float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)) == pytest.approx(float(cos), abs=1e-5)  # a rotation
    assert itq.nbytes == 2000 * 4 + 4 * (32 * 32 + 32)
    plain = QuantizedIndex.build(docs, "binary")
    assert _overlap(itq, docs, queries) > _overlap(plain, docs, queries) + 0.1


def test_eval_frontier(monkeypatch, capsys, toy_beir, tiny_model_dir, tmp_path):
    out = tmp_path / "frontier"
    code, text = run_cli(
        monkeypatch, capsys, "eval", "--data", toy_beir, "--model", tiny_model_dir, "--out", out, "--k", 8,
        "--dims", "8,32", "--precision", "fp32,int8,binary",
    )  # fmt: skip
    assert code == 0, text
    res = json.loads((out / "frontier.json").read_text())
    size = rw.BiEncoder.load(tiny_model_dir).backbone.config.hidden_size
    assert set(res["cells"]) == {"8", "32", str(size)} and set(res["cells"]["8"]) == {"fp32", "int8", "binary"}
    base = res["cells"][str(size)]["fp32"]
    assert base["p"] == 1.0 and res["baseline"] == f"{size}/fp32"
    assert np.mean(list(res["per_query"]["8/int8"].values())) == pytest.approx(res["cells"]["8"]["int8"]["ndcg@10"])
    plain = rw.evaluate_model(rw.BiEncoder.load(tiny_model_dir), load_beir(toy_beir, "test").own_split(), 8)
    assert base["ndcg@10"] == pytest.approx(plain.metrics["ndcg@10"], abs=1e-6)
    assert res["cells"]["8"]["binary"]["index_bytes"] == 8 * 1  # 8 documents x 8 bits
    assert all(0 <= c["p_holm"] <= 1 and c["query_ms"] >= 0 for row in res["cells"].values() for c in row.values())
    assert (out / "frontier.png").stat().st_size > 1000 and "| 8 | binary |" in (out / "frontier.md").read_text()
    code, text = run_cli(monkeypatch, capsys, "eval", "--data", toy_beir, "--out", tmp_path / "x", "--dims", "8,a")
    assert code == 2 and "whole numbers" in text

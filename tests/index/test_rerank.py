"""Retrieve-then-rerank: the pipeline object, the embedding second pass, the rerank command and its run folder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rankwise.data import load_beir, write_run
from rankwise.errors import DataError, RankwiseError
from rankwise.index.rerank import (
    BM25Stage,
    CrossEncoderStage,
    DenseStage,
    Pipeline,
    PRFStage,
    RunFileStage,
    interpolate,
)
from rankwise.models import BiEncoder, CrossEncoder
from tests.conftest import run_cli


def test_cross_encoder_stage_reorders_the_first_stage_by_its_scores(toy_beir, tiny_model_dir):
    ds = load_beir(toy_beir, "test")
    ce = CrossEncoder(tiny_model_dir, seed=2)
    res = Pipeline(BM25Stage(), CrossEncoderStage(ce), depth=5).run(ds)
    assert set(res.run) == set(res.first) == set(ds.split_queries)
    for qid, docs in res.run.items():
        assert set(docs) == set(res.first[qid]) and 1 <= len(docs) <= 5  # the same candidates, new scores
        ids = list(docs)
        expected = ce.rank(ds.queries[qid], [ds.corpus[d].full_text for d in ids])
        np.testing.assert_allclose([docs[d] for d in ids], expected, atol=1e-5)
    assert set(res.latency_ms) == {"first", "second"}
    assert all(v > 0 for stage in res.latency_ms.values() for v in stage.values())


def test_prf_with_alpha_zero_keeps_the_dense_scores_and_text_mode_moves_them(toy_beir, tiny_model_dir):
    ds = load_beir(toy_beir, "test")
    model = BiEncoder.load(str(tiny_model_dir))
    plain = Pipeline(DenseStage(model), PRFStage(model, alpha=0.0), depth=8).run(ds)
    for qid in plain.run:
        for d, s in plain.first[qid].items():
            assert plain.run[qid][d] == pytest.approx(s, abs=1e-5)
    for mode in ("text", "vector"):
        moved = Pipeline(DenseStage(model), PRFStage(model, alpha=1.0, k=2, mode=mode), depth=8).run(ds)
        assert any(abs(moved.run[q][d] - plain.first[q][d]) > 1e-4 for q in moved.run for d in moved.run[q]), (
            f"{mode}: the refined query scored like the plain one"
        )


def test_vector_prf_is_rocchio_in_embedding_space(toy_beir, tiny_model_dir):
    ds = load_beir(toy_beir, "test")
    model = BiEncoder.load(str(tiny_model_dir))
    stage = PRFStage(model, alpha=1.0, k=2, mode="vector", beta=0.5)
    stage.prepare(ds)
    qid = next(iter(ds.split_queries))
    first = Pipeline(DenseStage(model), depth=8).run(ds).first[qid]
    got = stage.rerank(ds.queries[qid], list(first.items()))
    ids = sorted(first, key=lambda d: -first[d])
    emb = {d: stage.emb[stage.row[d]] for d in ids}
    q = model.encode([ds.queries[qid]], "query")[0]
    refined = q + 0.5 * (emb[ids[0]] + emb[ids[1]]) / 2
    refined *= np.linalg.norm(q) / np.linalg.norm(refined)
    for d in ids:
        assert got[d] == pytest.approx(float(emb[d] @ refined), abs=1e-5)


def test_bad_first_stages_are_named(toy_beir, tiny_model_dir, tmp_path):
    ds = load_beir(toy_beir, "test")
    ce = CrossEncoderStage(CrossEncoder(tiny_model_dir))
    with pytest.raises(RankwiseError, match="depth 50 is beyond the corpus"):
        Pipeline(BM25Stage(), ce, depth=50).run(ds)
    run_file = tmp_path / "first.trec"
    write_run(run_file, {"q4": {"d4": 2.0, "d9": 1.0}, "q5": {"d5": 1.0}})
    with pytest.raises(DataError, match=r"first\.trec:2, field 'docid'.*'d9'.*not in the corpus"):
        Pipeline(RunFileStage(run_file), ce, depth=2).run(ds)
    write_run(run_file, {"q4": {"d4": 2.0, "d3": 1.0}, "q5": {"d5": 1.0}})
    with pytest.raises(RankwiseError, match="depth 5 is beyond the first stage's results.*at most 2"):
        Pipeline(RunFileStage(run_file), ce, depth=5).run(ds)
    res = Pipeline(RunFileStage(run_file), ce, depth=2).run(ds)
    assert res.first["q4"] == {"d4": 2.0, "d3": 1.0} and res.first["q6"] == {}


def test_train_a_reranker_then_rerank_compare_and_report(monkeypatch, capsys, toy_beir, tiny_model_dir, tmp_path):
    train_out = tmp_path / "ce-run"
    code, text = run_cli(
        monkeypatch,
        capsys,
        "train",
        "--data",
        toy_beir,
        "--out",
        train_out,
        "--kind",
        "cross-encoder",
        "--model",
        tiny_model_dir,
        "--steps",
        2,
        "--batch-size",
        2,
        "--list-size",
        3,
        "--pair-max-length",
        32,
    )
    assert code == 0, text
    assert (train_out / "model" / "config.json").is_file()
    out = tmp_path / "rr"
    code, text = run_cli(
        monkeypatch,
        capsys,
        "rerank",
        "--data",
        toy_beir,
        "--retriever",
        "bm25",
        "--reranker",
        train_out / "model",
        "--depth",
        5,
        "--out",
        out,
    )
    assert code == 0, text
    assert "latency per query" in text
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"first", "reranked", "latency"} and "ndcg@10" in metrics["reranked"]
    latency = json.loads((out / "latency.json").read_text())
    assert set(latency["second"]) == set(load_beir(toy_beir, "test").split_queries)
    assert (out / "report.html").is_file() and (out / "run-first.trec").is_file()
    code, text = run_cli(monkeypatch, capsys, "compare", out, out / "run-first.trec")
    assert code == 0, text
    code, text = run_cli(monkeypatch, capsys, "eval", "--run", out, "--metrics", "ndcg@10")
    assert code == 0, text
    assert f"{metrics['reranked']['ndcg@10']:.4f}" in text  # the folder's own qrels, the same figure
    code, text = run_cli(monkeypatch, capsys, "report", out)
    assert code == 0, text
    # a bi-encoder folder as the reranker: one clear line, no traceback
    BiEncoder.load(str(tiny_model_dir)).save(tmp_path / "bi")
    code, text = run_cli(
        monkeypatch, capsys, "rerank", "--data", toy_beir, "--reranker", tmp_path / "bi", "--out", tmp_path / "x"
    )
    assert code != 0 and "not a cross-encoder" in text and "Traceback" not in text


def test_pipeline_takes_models_directly(toy_beir, tiny_model_dir, tmp_path):
    ds = load_beir(toy_beir, "test")
    dual, ce = BiEncoder.load(str(tiny_model_dir)), CrossEncoder(tiny_model_dir, seed=2)
    a = Pipeline(dual, ce, depth=4).run(ds)
    b = Pipeline(DenseStage(dual), CrossEncoderStage(ce), depth=4).run(ds)
    assert a.run.keys() == b.run.keys()
    assert all(a.run[q][d] == pytest.approx(b.run[q][d], abs=1e-6) for q in a.run for d in a.run[q])
    write_run(tmp_path / "r.trec", a.first)
    c = Pipeline(tmp_path / "r.trec", ce, depth=4).run(ds)
    assert {q: set(d) for q, d in c.first.items()} == {q: set(d) for q, d in a.first.items()}
    with pytest.raises(RankwiseError, match="expected a BiEncoder, 'bm25', a TREC run file"):
        Pipeline("nope.trec", ce)


def test_interpolation_mixes_z_scores(toy_beir, tiny_model_dir):
    ds = load_beir(toy_beir, "test")
    ce, dual = CrossEncoder(tiny_model_dir, seed=3), DenseStage(BiEncoder.load(str(tiny_model_dir)))
    raw = Pipeline(dual, CrossEncoderStage(ce), depth=4).run(ds)
    mixed = Pipeline(dual, CrossEncoderStage(ce, interpolate=0.3), depth=4).run(ds)
    checked = 0
    for qid, first in raw.first.items():
        ids = list(first)
        if len(ids) < 2:
            continue
        checked += 1
        a, b = np.array([first[d] for d in ids]), np.array([raw.run[qid][d] for d in ids])
        want = 0.7 * (b - b.mean()) / b.std() + 0.3 * (a - a.mean()) / a.std()
        assert [mixed.run[qid][d] for d in ids] == pytest.approx(want.tolist(), abs=1e-5)
    assert checked >= 2
    # weight 1 ranks as the first stage does; the post-hoc function gives the stage's scores
    top = Pipeline(dual, CrossEncoderStage(ce, interpolate=1.0), depth=4).run(ds)
    for qid, first in raw.first.items():
        assert sorted(first, key=first.get) == sorted(top.run[qid], key=top.run[qid].get)
        assert interpolate(first, raw.run[qid], 0.3) == pytest.approx(mixed.run[qid], abs=1e-6)
    assert interpolate({"a": 1.0, "b": 1.0}, {"a": 2.0, "b": 0.0}, 0.5) == {"a": 0.5, "b": -0.5}
    with pytest.raises(RankwiseError, match="interpolate=1.5 is outside"):
        CrossEncoderStage(ce, interpolate=1.5)

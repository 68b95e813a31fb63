"""Ensemble teachers: each teacher's scores normalised per query and averaged (by hand), BM25 as a
teacher, and mining that stores the ensemble's scores for distillation."""

import json

import numpy as np
import pytest
import torch

from rankwise.data import load_beir
from rankwise.errors import RankwiseError
from rankwise.index.retrieve import BM25Retriever, corpus_texts
from rankwise.models import BiEncoder
from rankwise.negatives.mining import MineOptions, mine
from rankwise.negatives.teacher import BiEncoderTeacher, BM25Teacher, EnsembleTeacher, Teacher, load_teacher


class _Fixed(Teacher):
    def __init__(self, name, table):
        self.name, self.table = name, table

    def score(self, query, docs):
        return np.array([self.table[d] for d in docs], dtype=np.float32)


def test_ensemble_normalises_each_teacher_then_averages():
    a = _Fixed("a", {"x": 10.0, "y": 0.0, "z": 5.0})  # min-max: 1, 0, 0.5
    b = _Fixed("b", {"x": -1.0, "y": 3.0, "z": 1.0})  # min-max: 0, 1, 0.5
    got = EnsembleTeacher([a, b], weights=[3, 1]).score("q", ["x", "y", "z"])
    np.testing.assert_allclose(got, [0.75 * 1 + 0.25 * 0, 0.75 * 0 + 0.25 * 1, 0.5], rtol=1e-6)
    z = EnsembleTeacher([a, b], weights=[3, 1], norm="z-score").score("q", ["x", "y", "z"])
    za, zb = np.array([1.2247449, -1.2247449, 0.0]), np.array([-1.2247449, 1.2247449, 0.0])
    np.testing.assert_allclose(z, 0.75 * za + 0.25 * zb, atol=1e-5)
    assert EnsembleTeacher([a, b]).name == "ensemble(a+b)"
    with pytest.raises(RankwiseError, match="at least two"):
        EnsembleTeacher([a])
    with pytest.raises(RankwiseError, match="one non-negative weight per teacher"):
        EnsembleTeacher([a, b], weights=[1.0])


def test_bm25_teacher_scores_as_bm25_retrieval(topics_beir):
    ds = load_beir(topics_beir, "train")
    teacher = load_teacher("bm25")
    assert isinstance(teacher, BM25Teacher)
    with pytest.raises(RankwiseError, match="prepare"):
        teacher.score("q", ["x"])
    teacher.prepare(ds)
    ids, texts = corpus_texts(ds)
    query = next(iter(ds.queries.values()))
    idx, scores, _ = BM25Retriever(ids, texts).search([query], 5, states=False)
    np.testing.assert_allclose(teacher.score(query, [texts[i] for i in idx[0]]), scores[0], rtol=1e-5)
    # a text outside the corpus (an inverse-cloze positive) under the corpus's statistics
    rest = texts[idx[0][0]] + " and more"
    mixed = teacher.score(query, [rest, texts[idx[0][1]]])
    np.testing.assert_allclose(mixed, teacher.index.bm25.score_texts(query, [rest, texts[idx[0][1]]]), rtol=1e-6)
    assert mixed[1] == pytest.approx(scores[0][1], rel=1e-5) and 0 < mixed[0] <= scores[0][0] + 1e-6


def test_mining_stores_the_ensembles_scores(topics_beir, tmp_path, tiny_model_dir):
    ds = load_beir(topics_beir, "train")
    spec = f"{tiny_model_dir}+bm25"
    opts = MineOptions(method="bm25", k=3, window=(1, 20), teacher=spec, teacher_margin=0.0, max_length=32)
    mine(ds, opts, tmp_path / "n.jsonl", show_progress=False, log_fn=lambda _: None)
    teacher = load_teacher(spec)
    assert isinstance(teacher, EnsembleTeacher) and [t.family for t in teacher.teachers] == ["bi-encoder", "bm25"]
    teacher.prepare(ds)
    for line in (tmp_path / "n.jsonl").read_text().splitlines():
        r = json.loads(line)
        docs = [ds.corpus[d].full_text for d in [*r["positive_ids"], *r["negative_ids"]]]
        # min-max within the scored list: the mined file keeps the scores the teacher gave them together
        assert all(0.0 <= s <= 1.0 for s in [*r["scores"]["positives"], *r["scores"]["negatives"]])
        assert max(r["scores"]["negatives"], default=0) <= min(r["scores"]["positives"])
        assert len(docs) == len(r["scores"]["positives"]) + len(r["scores"]["negatives"])


def test_ensemble_fuses_as_fusion_does_with_ranks_or_scores():
    """RRF and CombMNZ ensembles give Fusion.fuse_query's scores for the same candidates (by hand:
    RRF sums w / (k + rank))."""
    from rankwise.index.fusion import Fusion

    a, b = _Fixed("a", {"x": 3.0, "y": 1.0, "z": 2.0}), _Fixed("b", {"x": 0.1, "y": 0.9, "z": 0.2})
    docs = ["x", "y", "z"]
    rrf = EnsembleTeacher([a, b], method="rrf", k=10).score("q", docs)
    by_hand = [0.5 / 11 + 0.5 / 13, 0.5 / 13 + 0.5 / 11, 0.5 / 12 + 0.5 / 12]
    np.testing.assert_allclose(rrf, by_hand, rtol=1e-6)
    mnz = EnsembleTeacher([a, b], method="combmnz", norm="z-score").score("q", docs)
    want = Fusion("combmnz", "z-score", weights=(0.5, 0.5)).fuse_query([a.table, b.table])
    np.testing.assert_allclose(mnz, [want[d] for d in docs], rtol=1e-6)
    with pytest.raises(RankwiseError, match="method"):
        EnsembleTeacher([a, b], method="borda")


def test_mining_with_a_rank_fused_ensemble_teacher(topics_beir, tmp_path, tiny_model_dir):
    ds = load_beir(topics_beir, "train")
    spec = f"{tiny_model_dir}+bm25"
    opts = MineOptions(k=3, window=(1, 20), teacher=spec, teacher_fusion="rrf:k=10", teacher_margin=0.0, max_length=32)
    mine(ds, opts, tmp_path / "n.jsonl", show_progress=False, log_fn=lambda _: None)
    assert load_teacher(spec, fusion="rrf:k=10").name.startswith("ensemble[rrf]")
    for line in (tmp_path / "n.jsonl").read_text().splitlines():
        s = json.loads(line)["scores"]
        # RRF with equal weights: 0.5/(10 + rank) per teacher, rank >= 1, so every score is in (0, 1/11]
        assert all(0.0 < v <= 1 / 11 + 1e-6 for v in [*s["positives"], *s["negatives"]])
    with pytest.raises(RankwiseError, match="teacher fusion"):
        load_teacher(spec, fusion="borda")


def test_a_reranker_started_from_the_fine_tuned_dual_encoder_joins_the_ensemble(topics_beir, tmp_path, tiny_model_dir):
    """The reranker note's fix: a cross-encoder that starts from the trained dual encoder's weights
    (its encoder equal to the dual's, a fresh head), trained, then one teacher among three."""
    import torch

    import rankwise as rw
    from rankwise.data import examples_from_qrels

    ds = load_beir(topics_beir, "train")
    examples = examples_from_qrels(ds)
    dual = rw.BiEncoder.load(str(tiny_model_dir), query_max_length=16, doc_max_length=16)
    rw.train(dual, examples, rw.TrainConfig(steps=2, batch_size=4, lr=1e-3))
    dual_dir = dual.save(tmp_path / "dual")
    ce = rw.CrossEncoder(dual_dir, max_length=32)
    ours, theirs = ce.backbone.base_model.state_dict(), dual.backbone.state_dict()
    shared = [n for n in theirs if n in ours]
    assert len(shared) > 10 and "encoder.layer.0.attention.self.query.weight" in shared
    for name in shared:
        torch.testing.assert_close(ours[name], theirs[name], msg=name)
    assert ce.fresh_head
    rw.train(ce, examples, rw.TrainConfig(steps=2, batch_size=4, lr=1e-3, list_size=2))
    ce_dir = ce.save(tmp_path / "ce")
    teacher = load_teacher(f"{ce_dir}+{dual_dir}+bm25")
    assert [t.family for t in teacher.teachers] == ["cross-encoder", "bi-encoder", "bm25"]
    teacher.prepare(ds)
    docs = [d.full_text for d in list(ds.corpus.values())[:5]]
    scores = teacher.score(next(iter(ds.queries.values())), docs)
    assert scores.shape == (5,) and np.isfinite(scores).all() and 0 <= scores.min() <= scores.max() <= 1


def test_teacher_scale_multiplies_the_stored_scores_after_the_guard(topics_beir, tmp_path, tiny_model_dir):
    ds = load_beir(topics_beir, "train")
    base = dict(method="bm25", k=3, window=(1, 20), teacher=f"{tiny_model_dir}+bm25", teacher_margin=0.1, max_length=32)
    mine(ds, MineOptions(**base), tmp_path / "a.jsonl", show_progress=False, log_fn=lambda _: None)
    mine(ds, MineOptions(**base, teacher_scale=0.25), tmp_path / "b.jsonl", show_progress=False, log_fn=lambda _: None)
    a, b = ([json.loads(line) for line in (tmp_path / f).read_text().splitlines()] for f in ("a.jsonl", "b.jsonl"))
    assert [r["negative_ids"] for r in a] == [r["negative_ids"] for r in b]  # the guard read unscaled scores
    for ra, rb in zip(a, b):
        for side in ("positives", "negatives"):
            np.testing.assert_allclose(rb["scores"][side], 0.25 * np.array(ra["scores"][side]), rtol=1e-6)
    assert any(r["scores"]["negatives"] for r in a)
    with pytest.raises(ValueError, match="teacher_scale"):
        MineOptions(teacher_scale=0.0)


def test_a_prepared_bi_encoder_teacher_encodes_each_document_once(tiny_model_dir, topics_beir, monkeypatch, tmp_path):
    monkeypatch.setenv("RANKWISE_CACHE", str(tmp_path / "cache"))  # an empty embeddings cache
    ds = load_beir(topics_beir, "train")
    texts = [d.full_text for d in ds.corpus.values()]
    model = BiEncoder.load(tiny_model_dir)
    plain = BiEncoderTeacher(model).score_many(["apple fruit", "ocean"], [texts[:10], texts[5:15]])
    teacher = BiEncoderTeacher(model)
    teacher.prepare(ds)
    encoded = []
    original = model.encode
    monkeypatch.setattr(
        model, "encode", lambda t, side, **kw: encoded.append((side, len(t))) or original(t, side, **kw)
    )
    first = teacher.score_many(["apple fruit", "ocean"], [texts[:10], texts[5:15]])
    again = teacher.score_many(["violin"], [texts[8:12]])  # all seen: only the query is encoded
    for got, want in zip(first, plain):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert encoded == [("query", 2), ("doc", 15), ("query", 1)]
    want = BiEncoderTeacher(model).score_many(["violin"], [texts[8:12]])[0]
    np.testing.assert_allclose(again[0], want, rtol=1e-5, atol=1e-6)
    with torch.no_grad():  # the model changes (as a training step changes it): every document again
        next(model.backbone.parameters()).add_(0.01)
    encoded.clear()
    after = teacher.score_many(["violin"], [texts[8:12]])[0]
    assert encoded == [("query", 1), ("doc", 4)]
    np.testing.assert_allclose(after, BiEncoderTeacher(model).score_many(["violin"], [texts[8:12]])[0], rtol=1e-5)


def test_the_teacher_and_the_miner_start_from_the_cached_corpus_embeddings(
    tiny_model_dir, topics_beir, monkeypatch, tmp_path
):
    """A consistency filter or an evaluation that kept the corpus's embeddings spares mining and its
    teacher from encoding the corpus again."""
    from rankwise.index.retrieve import cached_embeddings
    from rankwise.negatives import mining

    monkeypatch.setenv("RANKWISE_CACHE", str(tmp_path / "cache"))
    ds = load_beir(topics_beir, "train")
    model = BiEncoder.load(tiny_model_dir)
    _, texts = corpus_texts(ds)
    kept = cached_embeddings(model, texts)
    teacher = BiEncoderTeacher(model)
    teacher.prepare(ds)
    sides = []
    original = model.encode
    monkeypatch.setattr(model, "encode", lambda t, side, **kw: sides.append(side) or original(t, side, **kw))
    got = teacher.score_many(["apple fruit"], [texts[:7]])[0]
    assert sides == ["query"]
    np.testing.assert_allclose(got, kept[:7] @ original(["apple fruit"], "query")[0], rtol=1e-5)
    monkeypatch.setattr(mining, "_encode_in_shards", lambda *a, **k: pytest.fail("the corpus was encoded again"))
    out = tmp_path / "neg.jsonl"
    mine(
        ds,
        MineOptions(method="dense", k=2, window=(1, 10)),
        out,
        show_progress=False,
        model=model,
        log_fn=lambda m: None,
    )
    assert out.is_file() and sides.count("doc") == 0

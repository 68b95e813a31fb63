import json

import numpy as np
import pytest

from rankwise.data import load_beir
from rankwise.errors import ConfigError, DataError, RankwiseError
from rankwise.negatives.mining import MineOptions, _guard, mine
from rankwise.negatives.strategies import NEGATIVES
from rankwise.training.config import tomllib
from tests.conftest import run_cli


def rows(path):
    return {r["query_id"]: r for r in map(json.loads, path.read_text().splitlines())}


def test_window_excludes_positives_and_keeps_ranks(topics_beir, tmp_path):
    ds = load_beir(topics_beir, "train")
    stats = mine(
        ds,
        MineOptions(method="bm25", k=3, window=(2, 10)),
        tmp_path / "n.jsonl",
        show_progress=False,
        log_fn=lambda _: None,
    )
    got = rows(tmp_path / "n.jsonl")
    assert stats.queries == len(got) == 16 and not (tmp_path / "n.jsonl.partial").exists()
    for r in got.values():
        assert set(r["negative_ids"]).isdisjoint(r["positive_ids"])
        ranks = r["mined"]["negative_ranks"]
        assert all(2 <= x <= 10 for x in ranks) and ranks == sorted(ranks) and len(ranks) <= 3
        assert r["mined"]["negative_scores"] == sorted(r["mined"]["negative_scores"], reverse=True)
    # BM25 scores are exact: the positive's score is what bm25s gives it for the query
    assert all(len(r["mined"]["positive_scores"]) == 1 for r in got.values())
    # a judged grade-0 document is a confirmed negative, not excluded like a positive
    wide = mine(
        ds,
        MineOptions(method="bm25", k=10, window=(1, 10)),
        tmp_path / "w.jsonl",
        show_progress=False,
        log_fn=lambda _: None,
    )
    assert wide.queries == 16 and "d04" in rows(tmp_path / "w.jsonl")["q00"]["negative_ids"]


def test_margin_guard_drops_what_it_should():
    neg = np.array([5.0, 4.5, 3.9, 3.0])
    assert _guard(neg, 4.0, None, "absolute").all()
    assert _guard(neg, 4.0, 0.0, "absolute").tolist() == [False, False, True, True]  # at or above the positive: dropped
    assert _guard(neg, 4.0, 0.5, "absolute").tolist() == [False, False, False, True]  # within 0.5 of it: dropped
    assert _guard(neg, 4.0, 0.1, "relative").tolist() == [False, False, False, True]  # above 0.9 x 4.0 = 3.6: dropped


def test_margin_guard_in_mining(topics_beir, tmp_path):
    ds = load_beir(topics_beir, "train")
    mine(
        ds,
        MineOptions(method="bm25", k=10, window=(1, 40), margin=0.0),
        tmp_path / "n.jsonl",
        show_progress=False,
        log_fn=lambda _: None,
    )
    for r in rows(tmp_path / "n.jsonl").values():
        low = min(r["mined"]["positive_scores"])
        assert all(s <= low for s in r["mined"]["negative_scores"])


def test_fill_depth_fills_queries_the_guard_left_short(topics_beir, tmp_path):
    ds = load_beir(topics_beir, "train")

    def run(name, **kw):
        stats = mine(
            ds,
            MineOptions(method="bm25", k=1, margin=0.0, **kw),
            tmp_path / name,
            show_progress=False,
            log_fn=lambda _: None,
        )
        return stats, rows(tmp_path / name)

    short_stats, short = run("short.jsonl", window=(1, 4))
    assert 0 < short_stats.short < 16  # the guard empties the window of queries whose positive ranks 4th
    assert short_stats.empty == sum(not r["negative_ids"] for r in short.values()) == short_stats.short  # k=1
    filled_stats, filled = run("filled.jsonl", window=(1, 4), fill_depth=40)
    _, deep = run("deep.jsonl", window=(1, 40))
    # sampling=top: the window's guarded candidates, then the guarded ones below it in rank order,
    # are exactly the first k guarded candidates of the deep window
    assert {q: r["negative_ids"] for q, r in filled.items()} == {q: r["negative_ids"] for q, r in deep.items()}
    assert filled_stats.negatives > short_stats.negatives and filled_stats.empty < short_stats.empty
    took = {q for q, r in filled.items() if r["mined"]["filled"] > 0}
    assert filled_stats.filled == len(took) > 0
    for q, r in filled.items():
        assert r["mined"]["filled"] == sum(x > 4 for x in r["mined"]["negative_ranks"])
        assert (q in took) == (not short[q]["negative_ids"])  # only queries the guard left short
        assert all(s <= min(r["mined"]["positive_scores"]) for s in r["mined"]["negative_scores"])
        assert r["mined"]["dropped_margin"] == short[q]["mined"]["dropped_margin"]  # counted in the window only
    with pytest.raises(ValueError, match="fill_depth"):
        MineOptions(window=(1, 30), fill_depth=30)
    spec = NEGATIVES.create("bm25:window=1-30,margin=0.0,fill_depth=100")
    assert spec.fill_depth == 100 and "fill_depth=100" in str(spec)


def test_stats_of_shares_sum_to_the_whole(topics_beir, tmp_path):
    from rankwise.data.beir import Dataset
    from rankwise.negatives.mining import MineStats

    ds = load_beir(topics_beir, "train")
    opts = MineOptions(method="bm25", k=2, window=(1, 4), margin=0.0, fill_depth=10)
    whole = mine(ds, opts, tmp_path / "all.jsonl", show_progress=False, log_fn=lambda _: None)
    qids = list(ds.qrels)
    parts = [
        mine(
            Dataset(ds.corpus, ds.queries, {q: ds.qrels[q] for q in share}, ds.path, ds.split, []),
            opts,
            tmp_path / f"part{n}.jsonl",
            show_progress=False,
            log_fn=lambda _: None,
        )
        for n, share in enumerate((qids[:7], qids[7:]))
    ]
    total = MineStats.total(parts)
    counts = ("queries", "negatives", "dropped_margin", "short", "empty", "filled")
    assert [getattr(total, c) for c in counts] == [getattr(whole, c) for c in counts]
    assert whole.filled > 0 and total.summary(2) == whole.summary(2)


def test_uniform_sampling_is_seeded_per_query(topics_beir, tmp_path):
    ds = load_beir(topics_beir, "train")
    opts = MineOptions(method="bm25", k=2, window=(1, 30), sampling="uniform", seed=3)
    mine(ds, opts, tmp_path / "a.jsonl", show_progress=False, log_fn=lambda _: None)
    small_chunks = MineOptions(method="bm25", k=2, window=(1, 30), sampling="uniform", seed=3, chunk=3)
    mine(ds, small_chunks, tmp_path / "b.jsonl", show_progress=False, log_fn=lambda _: None)
    a, b = rows(tmp_path / "a.jsonl"), rows(tmp_path / "b.jsonl")
    assert {q: r["negative_ids"] for q, r in a.items()} == {q: r["negative_ids"] for q, r in b.items()}
    top = MineOptions(method="bm25", k=2, window=(1, 30), sampling="top")
    mine(ds, top, tmp_path / "c.jsonl", show_progress=False, log_fn=lambda _: None)
    c = rows(tmp_path / "c.jsonl")
    assert any(a[q]["negative_ids"] != c[q]["negative_ids"] for q in a)


def test_resume_reuses_finished_chunks(topics_beir, tmp_path, monkeypatch):
    ds = load_beir(topics_beir, "train")
    opts = MineOptions(method="bm25", k=2, window=(1, 30), chunk=4)
    import rankwise.negatives.mining as m

    real, calls = m._mine_chunk, []

    def dying(*a, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # killed during the third chunk
        return real(*a, **kw)

    monkeypatch.setattr(m, "_mine_chunk", dying)
    with pytest.raises(KeyboardInterrupt):
        mine(ds, opts, tmp_path / "n.jsonl", show_progress=False, log_fn=lambda _: None)
    assert not (tmp_path / "n.jsonl").exists() and len(list((tmp_path / "n.jsonl.partial").glob("chunk-*.jsonl"))) == 2
    monkeypatch.setattr(m, "_mine_chunk", real)
    stats = mine(ds, opts, tmp_path / "n.jsonl", show_progress=False, log_fn=lambda _: None)
    assert stats.chunks_reused == 2
    mine(ds, opts, tmp_path / "fresh.jsonl", show_progress=False, log_fn=lambda _: None)
    assert (tmp_path / "n.jsonl").read_text() == (tmp_path / "fresh.jsonl").read_text()


def test_dense_mining_and_bi_encoder_teacher(topics_beir, tmp_path, tiny_model_dir):
    ds = load_beir(topics_beir, "train")
    opts = MineOptions(
        method="dense",
        k=3,
        window=(1, 20),
        model=str(tiny_model_dir),
        teacher=str(tiny_model_dir),
        teacher_margin=0.0,
        max_length=32,
    )
    mine(ds, opts, tmp_path / "n.jsonl", show_progress=False, log_fn=lambda _: None)
    for r in rows(tmp_path / "n.jsonl").values():
        t = r["scores"]
        assert len(t["positives"]) == 1 and len(t["negatives"]) == len(r["negative_ids"])
        assert all(s <= min(t["positives"]) for s in t["negatives"])  # the teacher guard held
        # the teacher is the retriever here, so its scores are the retriever's (cosines)
        np.testing.assert_allclose(t["negatives"], r["mined"]["negative_scores"], atol=1e-4)


def test_unguarded_teacher_keeps_every_candidate_with_its_score(topics_beir, tmp_path, tiny_model_dir):
    """``teacher_margin=none`` (GPL): the negatives are the teacher-less mining's first k, and the
    teacher's scores of those above the positive are kept, not dropped."""
    ds = load_beir(topics_beir, "train")
    base = dict(method="dense", k=4, window=(1, 12), model=str(tiny_model_dir), max_length=32)
    mine(ds, MineOptions(**base), tmp_path / "plain.jsonl", show_progress=False, log_fn=lambda _: None)
    spec = f"dense:k=4,window=1-12,model={tiny_model_dir},max_length=32,teacher={tiny_model_dir},teacher_margin=none"
    opts = NEGATIVES.create(spec)  # as --negatives parses it: "none" is no guard, not a number
    assert opts.teacher_margin is None
    stats = mine(ds, opts, tmp_path / "gpl.jsonl", show_progress=False, log_fn=lambda _: None)
    plain, gpl = rows(tmp_path / "plain.jsonl"), rows(tmp_path / "gpl.jsonl")
    assert stats.dropped_teacher == 0 and plain.keys() == gpl.keys()
    above = 0
    for q, r in gpl.items():
        assert r["negative_ids"] == plain[q]["negative_ids"]
        # the teacher is the retriever: its stored scores are the retriever's cosines
        np.testing.assert_allclose(r["scores"]["negatives"], r["mined"]["negative_scores"], atol=1e-4)
        above += sum(s > min(r["scores"]["positives"]) for s in r["scores"]["negatives"])
    assert above > 0  # the guard would have dropped these


def test_fill_depth_with_a_teacher(topics_beir, tmp_path, tiny_model_dir):
    ds = load_beir(topics_beir, "train")

    def run(name, **kw):
        opts = MineOptions(
            method="dense", k=2, window=(1, 3), margin=0.0, model=str(tiny_model_dir),
            teacher=str(tiny_model_dir), teacher_margin=0.0, max_length=32, **kw,
        )  # fmt: skip
        return mine(ds, opts, tmp_path / name, show_progress=False, log_fn=lambda _: None), rows(tmp_path / name)

    plain_stats, plain = run("plain.jsonl")
    filled_stats, filled = run("filled.jsonl", fill_depth=40)
    assert plain_stats.short > 0 and filled_stats.negatives > plain_stats.negatives
    for q, r in filled.items():
        took = r["mined"]["filled"]
        assert (took > 0) == (len(plain[q]["negative_ids"]) + plain[q]["mined"]["dropped_teacher"] < 2)
        assert r["negative_ids"][: len(plain[q]["negative_ids"])] == plain[q]["negative_ids"]  # the window's first
        assert all(s <= min(r["scores"]["positives"]) for s in r["scores"]["negatives"])  # the teacher guard held


def test_bad_inputs(topics_beir, tmp_path):
    ds = load_beir(topics_beir, "train")
    with pytest.raises(ConfigError, match="window 41-500 starts beyond the corpus size"):
        mine(ds, MineOptions(method="bm25", window=(41, 500)), tmp_path / "n.jsonl", show_progress=False)
    said = []
    mine(
        ds,
        MineOptions(method="bm25", window=(1, 500)),
        tmp_path / "clip.jsonl",
        show_progress=False,
        log_fn=said.append,
    )
    assert "window 1-500 clipped to 1-40: the corpus has 40 documents" in said[0]
    with pytest.raises(RankwiseError, match="teacher '/nope' cannot load"):
        mine(ds, MineOptions(method="bm25", window=(1, 5), teacher="/nope"), tmp_path / "n.jsonl", show_progress=False)
    ds.qrels["q00"] = {"d00": 0}
    with pytest.raises(DataError, match="query 'q00' has no positive"):
        mine(ds, MineOptions(method="bm25", window=(1, 5)), tmp_path / "n.jsonl", show_progress=False)
    stats = mine(
        ds,
        MineOptions(method="bm25", window=(1, 5)),
        tmp_path / "n.jsonl",
        lenient=True,
        show_progress=False,
        log_fn=lambda _: None,
    )
    assert stats.skipped_no_positive == 1 and stats.queries == 15
    with pytest.raises(ConfigError, match="parameter 'window' has a bad value"):
        NEGATIVES.create("bm25:window=ten")
    with pytest.raises(ConfigError, match="unknown parameter 'depth'"):
        NEGATIVES.create("bm25:depth=3")
    with pytest.raises(ConfigError, match="expected 1 <= a <= b"):
        NEGATIVES.create("dense:window=9-3")


def test_mine_cli_and_train_with_mined_negatives(topics_beir, tmp_path, tiny_model_dir, monkeypatch, capsys):
    def cli(*args):
        return run_cli(monkeypatch, capsys, *args)

    code, text = cli(
        "mine",
        "--data",
        topics_beir,
        "--out",
        tmp_path / "neg.jsonl",
        "--k",
        2,
        "--window",
        "2-20",
        "--sampling",
        "uniform",
    )
    assert code == 0, text
    assert json.loads((tmp_path / "neg.jsonl.stats.json").read_text())["queries"] == 16
    code, text = cli(
        "train",
        "--data",
        topics_beir,
        "--train-file",
        tmp_path / "neg.jsonl",
        "--out",
        tmp_path / "run",
        "--model",
        tiny_model_dir,
        "--steps",
        2,
        "--batch-size",
        4,
        "--query-max-length",
        16,
        "--doc-max-length",
        32,
        "--batching",
        "nodup",
        "--chunk-tokens",
        128,
        "--activation-checkpointing",
    )
    assert code == 0, text
    saved = tomllib.loads((tmp_path / "run" / "config.toml").read_text())["train"]
    assert (saved["batching"], saved["chunk_tokens"], saved["activation_checkpointing"], saved["bf16"]) == (
        "nodup",
        128,
        True,
        False,
    )
    code, text = cli("mine", "--data", topics_beir, "--out", tmp_path / "x.jsonl", "--window", "50-999")
    assert code == 2 and "window 50-999 starts beyond the corpus size (40 documents)" in text
    # a mined file naming a document the corpus lacks: the file, line and field are named
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query_id": "q00", "positive_ids": ["d00"], "negative_ids": ["ghost"]}\n')
    code, text = cli(
        "train",
        "--data",
        topics_beir,
        "--train-file",
        bad,
        "--out",
        tmp_path / "run2",
        "--model",
        tiny_model_dir,
        "--steps",
        1,
        "--batch-size",
        2,
    )
    assert code == 2 and "bad.jsonl:1, field 'negative_ids': unknown document 'ghost'" in text


def test_dense_encoding_continues_from_finished_shards(topics_beir, tmp_path, tiny_model_dir, monkeypatch):
    import rankwise.negatives.mining as mining
    from rankwise.models import BiEncoder

    monkeypatch.setattr(mining, "SHARD", 16)  # 40 documents: shards of 16, 16 and 8
    model = BiEncoder.load(str(tiny_model_dir))
    texts = [d.full_text for d in load_beir(topics_beir, "train").corpus.values()]
    cache = tmp_path / "cache"
    cache.mkdir()
    whole = mining._encode_in_shards(model, texts, cache, False)
    (cache / "corpus-embeddings-00002.npy").unlink()  # as if killed while encoding the last shard
    sizes = []
    real = model.encode
    monkeypatch.setattr(model, "encode", lambda t, kind="doc", **kw: (sizes.append(len(t)), real(t, kind, **kw))[1])
    again = mining._encode_in_shards(model, texts, cache, False)
    assert sizes == [8] and np.allclose(whole, again, atol=1e-6)  # only the missing shard was encoded


def test_fused_mining_ranks_by_the_fusion_of_bm25_and_dense(topics_beir, tmp_path, tiny_model_dir):
    from rankwise.index.fusion import FusedRetriever, Fusion
    from rankwise.index.retrieve import BM25Retriever, DenseRetriever, corpus_texts, search_run
    from rankwise.models import BiEncoder

    ds = load_beir(topics_beir, "train")
    ids, texts = corpus_texts(ds)
    lexical = BM25Retriever(ids, texts)
    dense = DenseRetriever(BiEncoder.load(str(tiny_model_dir), query_max_length=32, doc_max_length=32), ids, texts)
    fused = FusedRetriever([lexical, dense], Fusion("combsum", "min-max"), depth_each=10)
    # the fused top 5 is Fusion.fuse over each retriever's own top 10, by document id
    want = Fusion("combsum", "min-max", depth=5).fuse([search_run(r, ds, 10) for r in (lexical, dense)])
    got = search_run(fused, ds, 5)
    assert got.keys() == want.keys()
    for q in want:
        assert list(got[q]) == sorted(want[q], key=lambda d: (want[q][d], d), reverse=True)
        np.testing.assert_allclose([got[q][d] for d in got[q]], [want[q][d] for d in got[q]], atol=1e-6)
    # score(): a retrieved row keeps its fused score; a row nobody retrieved still gets one
    idx, scores, states = fused.search([next(iter(ds.split_queries.values()))], 5)
    np.testing.assert_allclose(fused.score(states[0], idx[0][:2]), scores[0][:2], rtol=1e-5)
    far = next(j for j in range(len(ids)) if j not in set(idx[0]))
    assert np.isfinite(fused.score(states[0], [far])).all()

    opts = MineOptions(method="fused", fusion="rrf", k=2, window=(1, 10), model=str(tiny_model_dir), max_length=32)
    mine(ds, opts, tmp_path / "n.jsonl", show_progress=False, log_fn=lambda _: None)
    mined = rows(tmp_path / "n.jsonl")
    assert mined and all(r["mined"]["method"] == "fused" and len(r["negative_ids"]) == 2 for r in mined.values())
    with pytest.raises(ValueError, match="fusion"):
        MineOptions(method="fused", fusion="borda")

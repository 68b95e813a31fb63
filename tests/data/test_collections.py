"""Classic test collections as they come: empty records, negative grades, TREC four-column qrels,
ids with leading zeros, repeated texts. Read as trec_eval and BEIR's loader read them, and said."""

from __future__ import annotations

import numpy as np
import pytest

from rankwise.data import examples_from_qrels, load_beir, read_qrels, write_run
from rankwise.errors import DataError
from rankwise.metrics import evaluate
from rankwise.training.batching import build_inbatch
from tests.conftest import SHARED_DATA, run_cli, write_beir

TOPICS = [
    "apples are red fruit",
    "the ocean is deep",
    "python parses code",
    "trains run on rails",
    "violins have strings",
    "volcanoes erupt lava",
    "bees make honey",
    "snow falls in winter",
]


@pytest.fixture()
def classic(tmp_path):
    """Ids '001'..'008' (leading zeros), two empty records, a repeated text, TREC qrels with -1/-2."""
    corpus = [{"_id": f"{i:03d}", "title": "", "text": t} for i, t in enumerate(TOPICS, start=1)]
    corpus += [{"_id": "009", "title": "", "text": ""}, {"_id": "010", "text": "   "}]
    corpus += [{"_id": "011", "title": "", "text": TOPICS[2]}]  # the same text as '003'
    queries = [{"_id": f"{i:02d}", "text": t.split()[0] + " facts"} for i, t in enumerate(TOPICS, start=1)]
    folder = write_beir(tmp_path / "classic", corpus, queries, {"train": [("01", "001", 1)]})
    lines = [
        "01 0 001 2",
        "01 0 002 -1",
        "01 0 009 0",
        "02 0 002 1",
        "02 0 003 -2",
        "03 0 003 1",
        "03 0 011 0",
        "04 0 004 1",
        "04 0 010 1",
        "05 0 005 3",
        "05 0 006 -1",
    ]
    (folder / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")  # TREC's four columns, no header
    (folder / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\n01\t001\t1\n02\t002\t1\n03\t003\t1\n04\t010\t1\n"
    )
    return folder


def test_read_as_written(classic):
    ds = load_beir(classic, "test")
    assert "009" in ds.corpus and "010" in ds.corpus  # empty records stay retrievable
    assert any("2 documents have no title and no text (kept): '009', '010'" in w for w in ds.warnings)
    assert ds.qrels["01"] == {"001": 2, "002": -1, "009": 0} and ds.qrels["02"]["003"] == -2
    assert set(ds.queries) >= {"01", "02"} and "1" not in ds.queries  # ids exactly as written
    assert read_qrels(classic / "qrels" / "test.tsv") == ds.qrels


def test_three_and_four_columns_are_both_read_and_anything_else_is_located(tmp_path, classic):
    mixed = tmp_path / "mixed.tsv"
    mixed.write_text("query-id\tcorpus-id\tscore\n01\t001\t1\n02 0 002 -1\n")
    assert read_qrels(mixed) == {"01": {"001": 1}, "02": {"002": -1}}
    mixed.write_text("01 001\n")
    with pytest.raises(DataError, match=r"mixed.tsv:1: expected 3 columns .* or 4"):
        read_qrels(mixed)
    mixed.write_text("01\t001\t1.5\n")
    with pytest.raises(DataError, match=r"mixed.tsv:1, field 'score': expected an integer grade"):
        read_qrels(mixed)


def test_an_id_that_differs_only_by_normalisation_gets_a_hint(classic):
    qrels = classic / "qrels" / "test.tsv"
    qrels.write_text(qrels.read_text() + "01 0 1 1\n")
    with pytest.raises(
        DataError, match=r"document '1' is not in corpus.jsonl; it has '001' \(ids are compared exactly"
    ):
        load_beir(classic, "test")


def test_negative_grades_are_non_relevant_everywhere(classic):
    pytrec_eval = pytest.importorskip("pytrec_eval")
    ds = load_beir(classic, "test")
    rng = np.random.default_rng(0)
    run = {q: {d: float(rng.normal()) for d in ds.corpus} for q in ds.qrels}
    ours = evaluate(ds.qrels, run, ["ndcg@10", "map", "recall@100", "p@5", "mrr@10"])
    ref = pytrec_eval.RelevanceEvaluator(ds.qrels, {"ndcg_cut.10", "map", "recall.100", "P.5", "recip_rank"}).evaluate(
        run
    )
    for ours_name, name in [("ndcg@10", "ndcg_cut_10"), ("map", "map"), ("recall@100", "recall_100"), ("p@5", "P_5")]:
        assert ours[ours_name] == pytest.approx(np.mean([r[name] for r in ref.values()]), abs=1e-9)
    examples = examples_from_qrels(ds)
    assert all(
        d not in ("002", "003", "006") or (q.query_id, d) in {("02", "002"), ("03", "003")}
        for q in examples
        for d, _ in q.positives
    )  # a -1 / -2 grade is never a positive
    assert [d for d, _ in next(e for e in examples if e.query_id == "01").positives] == ["001"]


def test_training_skips_empty_positives_with_a_count(classic, caplog):
    ds = load_beir(classic, "train")
    examples = examples_from_qrels(ds)
    assert [e.query_id for e in examples] == ["01", "02", "03"]  # '04' has only the empty record '010'
    assert "skipped 1 positives that are empty records" in caplog.text


def test_repeated_texts_are_reported_and_can_count_as_one(classic):
    from rankwise.data.examples import TrainExample

    a = TrainExample("q a", [("003", TOPICS[2])])
    b = TrainExample("q b", [("011", TOPICS[2])])  # another id, the same text
    batch = build_inbatch([a, b], np.random.default_rng(0))
    assert batch.labels.tolist() == [[1, 0], [0, 1]]  # by id: each is the other's negative
    batch = build_inbatch([a, b], np.random.default_rng(0), by_text=True)
    assert batch.labels.tolist() == [[1], [1]]  # by text: one document, positive for both


def test_every_command_runs_on_the_collection_and_says_what_it_did(
    monkeypatch, capsys, caplog, classic, tiny_model_dir, tmp_path
):
    code, text = run_cli(monkeypatch, capsys, "data", "inspect", classic)
    flat = " ".join(text.split())
    assert code == 0 and "-2: 1" in flat and "-1: 2" in flat  # the grade distribution shows negatives
    assert "2 documents have no title and no text (kept)" in flat
    assert "1 documents repeat another document's text exactly" in flat and "'003' = '011'" in flat
    code, text = run_cli(
        monkeypatch,
        capsys,
        "eval",
        "--data",
        classic,
        "--split",
        "test",
        "--model",
        tiny_model_dir,
        "--out",
        tmp_path / "ev",
        "--max-length",
        16,
    )
    assert code == 0, text
    import json

    from rankwise.data import read_run

    pytrec_eval = pytest.importorskip("pytrec_eval")
    qrels = load_beir(classic, "test").qrels
    run = read_run(tmp_path / "ev" / "run.trec")
    ref = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "map"}).evaluate(run)
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["ndcg@10"] == pytest.approx(np.mean([r["ndcg_cut_10"] for r in ref.values()]), abs=1e-9)
    assert metrics["map"] == pytest.approx(np.mean([r["map"] for r in ref.values()]), abs=1e-9)
    code, text = run_cli(
        monkeypatch,
        capsys,
        "train",
        "--data",
        classic,
        "--model",
        tiny_model_dir,
        "--out",
        tmp_path / "tr",
        "--steps",
        2,
        "--batch-size",
        2,
        "--query-max-length",
        16,
        "--doc-max-length",
        16,
        "--negatives",
        "bm25:k=2,window=1-5,same_text_same_doc=true",
        "--same-text-same-doc",
    )
    assert code == 0, text
    assert "skipped 1 positives that are empty records" in caplog.text  # a logged warning (stderr)
    write_run(tmp_path / "bm25.trec", {q: {d: 1.0 for d in j} for q, j in qrels.items()})
    code, text = run_cli(
        monkeypatch, capsys, "compare", tmp_path / "ev", tmp_path / "bm25.trec", "--metrics", "ndcg@10"
    )
    assert code == 0, text


@pytest.mark.slow
def test_shared_trec_dl_qrels_equal_pytrec_eval_with_four_columns(tmp_path):
    """The real qrels rewritten in TREC's four-column form read the same and score the same."""
    pytrec_eval = pytest.importorskip("pytrec_eval")
    folder = SHARED_DATA / "trec-dl-5k"
    if not folder.is_dir():
        pytest.skip("../shared/data/trec-dl-5k is not here")
    three = read_qrels(folder / "qrels" / "test.tsv")
    four = tmp_path / "test.qrels"
    four.write_text("".join(f"{q} 0 {d} {g}\n" for q, j in three.items() for d, g in j.items()))
    assert read_qrels(four) == three
    rng = np.random.default_rng(1)
    docs = sorted({d for j in three.values() for d in j})
    run = {q: {d: float(rng.normal()) for d in rng.choice(docs, 200, replace=False)} for q in three}
    ours = evaluate(read_qrels(four), run, ["ndcg@10", "map"])
    ref = pytrec_eval.RelevanceEvaluator(three, {"ndcg_cut.10", "map"}).evaluate(run)
    assert ours["ndcg@10"] == pytest.approx(np.mean([r["ndcg_cut_10"] for r in ref.values()]), abs=1e-9)
    assert ours["map"] == pytest.approx(np.mean([r["map"] for r in ref.values()]), abs=1e-9)


def test_long_documents_are_counted_where_they_are_cut(monkeypatch, capsys, classic, tiny_model_dir, tmp_path):
    corpus = classic / "corpus.jsonl"
    corpus.write_text(corpus.read_text() + '{"_id": "012", "text": "' + "word " * 400 + '"}\n')
    code, text = run_cli(monkeypatch, capsys, "data", "inspect", classic)
    assert code == 0 and "1 of 12 documents are longer than 256 tokens" in " ".join(text.split())
    code, text = run_cli(
        monkeypatch,
        capsys,
        "eval",
        "--data",
        classic,
        "--model",
        tiny_model_dir,
        "--max-length",
        16,
        "--out",
        tmp_path / "ev",
    )
    assert code == 0 and "of 12 documents are longer than 16 tokens" in " ".join(text.split())

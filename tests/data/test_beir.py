import gzip
import shutil

import pytest

from rankwise.data import load_beir
from rankwise.errors import DataError
from tests.conftest import SHARED_DATA


def test_loads_split_and_joins_title(toy_beir):
    ds = load_beir(toy_beir, "test")
    assert len(ds.corpus) == 8 and len(ds.queries) == 8
    assert ds.qrels == {"q4": {"d4": 2, "d5": 0}, "q5": {"d5": 1}, "q6": {"d6": 1}, "q7": {"d7": 1}}
    assert isinstance(ds.qrels["q4"]["d4"], int)
    assert ds.corpus["d1"].full_text == "T1 the ocean is deep and blue"  # title + " " + text
    assert ds.corpus["d0"].full_text == "apples are red fruit"
    assert list(ds.split_queries) == ["q4", "q5", "q6", "q7"]


def test_gzip_files(toy_beir):
    for name in ("corpus.jsonl", "queries.jsonl"):
        src = toy_beir / name
        with open(src, "rb") as fh, gzip.open(toy_beir / f"{name}.gz", "wb") as out:
            shutil.copyfileobj(fh, out)
        src.unlink()
    assert len(load_beir(toy_beir, "train").corpus) == 8


@pytest.mark.parametrize(
    "line, field, reason",
    [
        ('{"_id": "x", "text": ', None, "malformed JSON"),
        ('{"text": "no id"}', "_id", "missing field"),
        ('{"_id": "d0", "text": "again"}', "_id", "duplicate id"),
        ('["a", "list"]', None, "expected a JSON object"),
    ],
)
def test_corpus_errors_name_file_line_field(toy_beir, line, field, reason):
    corpus = toy_beir / "corpus.jsonl"
    corpus.write_text(corpus.read_text() + line + "\n")
    with pytest.raises(DataError) as exc:
        load_beir(toy_beir, "test")
    err = exc.value
    assert err.path == str(corpus) and err.line == 9 and err.field == field
    assert reason in str(err) and "corpus.jsonl:9" in str(err)


def test_qrels_unknown_ids_error_or_counted_warning(toy_beir):
    qrels = toy_beir / "qrels" / "test.tsv"
    qrels.write_text(qrels.read_text() + "q4\tghost\t1\nnobody\td1\t1\n")
    with pytest.raises(DataError) as exc:
        load_beir(toy_beir, "test")
    assert exc.value.line == 7 and exc.value.field == "corpus-id" and "ghost" in str(exc.value)
    ds = load_beir(toy_beir, "test", allow_missing=True)
    assert ds.qrels["q4"] == {"d4": 2, "d5": 0}
    assert ds.warnings == [
        "dropped 1 judgements of queries missing from queries.jsonl",
        "dropped 1 judgements of documents missing from corpus.jsonl",
    ]


def test_missing_split_lists_available(toy_beir):
    with pytest.raises(DataError, match=r"no qrels for split 'dev'; available: \['test', 'train'\]"):
        load_beir(toy_beir, "dev")


def test_restrict_corpus_drops_judgements(toy_beir):
    ds = load_beir(toy_beir, "test").restrict_corpus({"d4", "d6"})
    assert set(ds.corpus) == {"d4", "d6"}
    assert ds.qrels == {"q4": {"d4": 2}, "q6": {"d6": 1}}


def test_hold_out_carves_a_seeded_dev_split(toy_beir):
    ds = load_beir(toy_beir, "test")
    rest, dev = ds.hold_out(2, seed=3)
    assert dev.split == "dev" and rest.split == "test"
    assert set(rest.qrels) | set(dev.qrels) == set(ds.qrels) and not set(rest.qrels) & set(dev.qrels)
    assert len(dev.qrels) == 2 and all(dev.qrels[q] == ds.qrels[q] for q in dev.qrels)
    assert ds.hold_out(2, seed=3)[1].qrels == dev.qrels  # seeded
    assert {frozenset(ds.hold_out(2, seed=s)[1].qrels) for s in range(10)} != {frozenset(dev.qrels)}
    with pytest.raises(DataError, match="n=4 must be between 1 and 3"):
        ds.hold_out(4)


def test_trec_dl_5k_counts():
    folder = SHARED_DATA / "trec-dl-5k"
    if not folder.is_dir():
        pytest.skip(f"shared benchmark data not found at {folder}")
    ds = load_beir(folder, "test")
    assert len(ds.corpus) == 5000
    assert len(ds.queries) == 50
    assert sum(len(j) for j in ds.qrels.values()) == 4102
    assert len(ds.qrels) == 43
    assert all(any(r > 0 for r in j.values()) for j in ds.qrels.values())


def test_split_corpus_keeps_the_splits_own_documents(tmp_path, toy_beir):
    import json

    from rankwise.data import load_beir
    from tests.conftest import write_beir

    plain = load_beir(toy_beir, "test")
    assert plain.own_split() is plain  # no split field: the whole corpus
    corpus = [
        {"_id": "a", "text": "x", "split": "test"},
        {"_id": "b", "text": "y", "split": "train"},
        {"_id": "c", "text": "z", "split": "test"},
    ]
    folder = write_beir(tmp_path / "s", corpus, [{"_id": "q", "text": "x?"}], {"test": [("q", "a", 1), ("q", "b", 0)]})
    undeclared = load_beir(folder, "test")
    assert undeclared.own_split() is undeclared  # a field named split is only metadata until declared
    (folder / "BUILD.json").write_text(json.dumps({"name": "mine", "split_field": "split"}))
    ds = load_beir(folder, "test").own_split()
    assert set(ds.corpus) == {"a", "c"} and ds.qrels == {"q": {"a": 1}}


def test_a_declared_split_that_drops_judged_queries_says_so(tmp_path, caplog):
    import json

    from rankwise.data import load_beir
    from tests.conftest import write_beir

    corpus = [{"_id": "a", "text": "x", "split": "test"}, {"_id": "b", "text": "y", "split": "train"}]
    queries = [{"_id": "q1", "text": "x?"}, {"_id": "q2", "text": "y?"}]
    folder = write_beir(tmp_path / "s", corpus, queries, {"test": [("q1", "a", 1), ("q2", "b", 1)]})
    (folder / "BUILD.json").write_text(json.dumps({"name": "stdlib-code"}))
    ds = load_beir(folder, "test").own_split()
    assert ds.qrels == {"q1": {"a": 1}}
    assert any("1 of 2 judged queries" in w for w in ds.warnings)

from rankwise.data import load_beir
from tests.conftest import write_beir


def test_split_corpus_keeps_the_splits_own_documents(tmp_path, toy_beir):
    plain = load_beir(toy_beir, "test")
    assert plain.own_split() is plain  # no split field: the whole corpus
    corpus = [
        {"_id": "a", "text": "x", "split": "test"},
        {"_id": "b", "text": "y", "split": "train"},
        {"_id": "c", "text": "z", "split": "test"},
    ]
    folder = write_beir(tmp_path / "s", corpus, [{"_id": "q", "text": "x?"}], {"test": [("q", "a", 1), ("q", "b", 0)]})
    ds = load_beir(folder, "test").own_split()
    assert set(ds.corpus) == {"a", "c"} and ds.qrels == {"q": {"a": 1}}

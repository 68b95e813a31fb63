"""LETOR / SVMlight files: reading (qid or group files, sparse or dense), writing, errors that
name file and line, normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from rankwise.data.letor import LetorData, Normalizer, read_letor, write_letor
from rankwise.errors import DataError, RankwiseError
from tests.conftest import SHARED_DATA

LETOR = SHARED_DATA / "letor"


def write(path, text):
    path.write_text(text)
    return path


def test_reads_qids_sparse_features_and_docids(tmp_path):
    p = write(
        tmp_path / "a.txt",
        "2 qid:7 1:0.5 3:1 #docid = D1 inc = 1\n0 qid:7 2:4\n1 qid:9 1:1 2:2 3:3 # docid = X\n",
    )
    d = read_letor(p)
    assert d.qids == ["7", "9"] and d.offsets.tolist() == [0, 2, 3]
    np.testing.assert_array_equal(d.features, [[0.5, 0, 1], [0, 4, 0], [1, 2, 3]])
    assert d.labels.tolist() == [2, 0, 1] and d.doc_ids == ["D1", "7:1", "X"]
    assert d.qrels() == {"7": {"D1": 2, "7:1": 0}, "9": {"X": 1}}


def test_group_file_and_positions(tmp_path):
    p = write(tmp_path / "rank.train", "1 1:1\n0 2:1\n3 1:2 2:2\n")
    write(tmp_path / "rank.train.query", "2\n1\n")
    write(tmp_path / "rank.train.position", "pos_1\npos_2\npos_1\n")
    d = read_letor(p)
    assert d.qids == ["0", "1"] and d.offsets.tolist() == [0, 2, 3] and d.positions.tolist() == [1, 2, 1]


@pytest.mark.parametrize(
    ("text", "groups", "match"),
    [
        ("1 qid:1 1:0.5\n0 qid:1 2:x\n", None, r"a\.txt:2, field 'feature 2': expected a number, got 'x'"),
        ("1 qid:1 1:0.5\nhigh qid:1 2:1\n", None, r"a\.txt:2, field 'label': expected a number"),
        ("1 qid:1 1:0.5\n0 qid:1 0.7\n", None, r"a\.txt:2, field 'feature': feature '0.7': expected index:value"),
        ("1 qid:1 1:0.5\n0 qid:1 a:1\n", None, r"a\.txt:2, field 'feature'.*integer >= 1"),
        ("1 qid:1 1:1\n0 qid:2 1:1\n1 qid:1 1:2\n", None, r"a\.txt:3, field 'qid': query '1' continues"),
        ("1 1:1\n0 1:2\n1 1:3\n", "2\n2\n", r"a\.txt\.query: the group sizes add up to 4 rows, and a\.txt has 3"),
        ("1 1:1\n", None, r"no group file"),
    ],
)
def test_bad_files_name_file_line_and_field(tmp_path, text, groups, match):
    p = write(tmp_path / "a.txt", text)
    if groups:
        write(tmp_path / "a.txt.query", groups)
    with pytest.raises(DataError, match=match):
        read_letor(p)


def test_a_position_file_of_another_length_is_refused(tmp_path):
    p = write(tmp_path / "a.txt", "1 qid:1 1:1\n0 qid:1 1:2\n")
    write(tmp_path / "a.txt.position", "pos_1\n")
    with pytest.raises(DataError, match=r"a\.txt\.position: 1 positions for 2 rows"):
        read_letor(p)


@pytest.mark.parametrize("qid", [True, False])
def test_write_then_read_round_trips(tmp_path, qid):
    rng = np.random.default_rng(0)
    x = rng.random((5, 4)).astype(np.float32)
    x[1, 2] = 0
    d = LetorData(
        x, np.array([1, 0, 2, 0, 1], np.float32), ["a", "b"], np.array([0, 3, 5]), [f"d{i}" for i in range(5)]
    )
    write_letor(tmp_path / "o.txt", d, qid=qid)
    back = read_letor(tmp_path / "o.txt", n_features=4)
    np.testing.assert_allclose(back.features, x, rtol=1e-6)
    assert back.labels.tolist() == d.labels.tolist() and back.doc_ids == d.doc_ids
    assert back.offsets.tolist() == [0, 3, 5] and (back.qids == ["a", "b"] if qid else back.qids == ["0", "1"])


def test_normalisation():
    x = np.array([[1, 5], [3, 5], [0, 0], [10, 1]], np.float32)
    d = LetorData(x, np.zeros(4, np.float32), ["a", "b"], np.array([0, 2, 4]), ["1", "2", "3", "4"])
    q = Normalizer("query").transform(d).features
    np.testing.assert_allclose(q, [[0, 0], [1, 0], [0, 0], [1, 1]])  # constant within a query -> 0
    g = Normalizer("global").fit(d)
    np.testing.assert_allclose(g.transform(d).features.mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(g.transform(d).features.std(0), 1, atol=1e-5)


def _lists(qids, sizes, offset=0):
    rows = sum(sizes)
    x = np.arange(offset, offset + rows, dtype=np.float32)[:, None]
    labels = (np.arange(rows) % 3).astype(np.float32)
    docs = [f"d{offset + r}" for r in range(rows)]
    return LetorData(x, labels, qids, np.concatenate([[0], np.cumsum(sizes)]), docs)


def test_concat_keeps_every_query_rows_and_docids():
    a, b = _lists(["a", "b"], [2, 3]), _lists(["c"], [4], offset=5)
    c = LetorData.concat([a, b])
    assert c.qids == ["a", "b", "c"] and c.offsets.tolist() == [0, 2, 5, 9]
    assert c.features[:, 0].tolist() == list(range(9)) and c.doc_ids[5] == "d5"
    assert c.qrels()["c"] == b.qrels()["c"]
    with pytest.raises(DataError, match="query 'a' is in more than one part"):
        LetorData.concat([a, a])
    wide = LetorData(np.zeros((4, 3), np.float32), np.zeros(4, np.float32), ["w"], np.array([0, 4]), list("wxyz"))
    with pytest.raises(DataError, match=r"\[1, 3\] features; read them with read_letor\(\.\.\., n_features=3\)"):
        LetorData.concat([a, wide])


def test_folds_rotate_test_and_validation_over_disjoint_parts():
    data = _lists([f"q{i}" for i in range(13)], [1 + i % 4 for i in range(13)])
    folds = data.folds(5, seed=3)
    tests = [set(te.qids) for _, _, te in folds]
    assert sorted(q for t in tests for q in t) == sorted(data.qids)  # each query tested exactly once
    for i, (tr, va, te) in enumerate(folds):
        assert set(va.qids) == tests[(i + 1) % 5]  # validated on the next fold's test part
        assert not set(tr.qids) & (set(va.qids) | set(te.qids))
        assert len(tr.qids) + len(va.qids) + len(te.qids) == 13
        for part in (tr, va, te):  # each query keeps its own rows
            for j, q in enumerate(part.qids):
                k = data.qids.index(q)
                assert part.features[part.query(j)].tolist() == data.features[data.query(k)].tolist()
    assert [te.qids for _, _, te in data.folds(5, seed=3)] == [te.qids for _, _, te in folds]  # seeded
    with pytest.raises(RankwiseError, match="k must be between 3"):
        data.folds(2)


@pytest.mark.skipif(not LETOR.is_dir(), reason="../shared/data/letor is absent")
def test_the_shared_letor_sets_read_as_documented():
    vali = read_letor(LETOR / "mq2008-fold1" / "vali.txt")
    assert (len(vali.labels), vali.n_queries, vali.n_features) == (2707, 157, 46)
    train = read_letor(LETOR / "lightgbm-rank" / "rank.train")
    assert (len(train.labels), train.n_queries) == (3005, 201) and train.positions is not None


def test_lenient_skips_malformed_rows_with_a_count(tmp_path, caplog):
    p = write(tmp_path / "a.txt", "1 qid:1 1:0.5\n0 qid:1 2:x\n2 qid:1 1:1\n")
    with caplog.at_level("WARNING"):
        d = read_letor(p, lenient=True)
    assert d.labels.tolist() == [1, 2] and "skipped 1 malformed rows" in caplog.text
    q = write(tmp_path / "b.txt", "1 1:1\n0 1:x\n")
    write(tmp_path / "b.txt.query", "2\n")
    with pytest.raises(DataError, match=r"b\.txt:2"):  # a group file counts rows: no skipping there
        read_letor(q, lenient=True)

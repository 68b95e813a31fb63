import pytest

from rankwise.data import read_qrels, read_run, write_qrels, write_run
from rankwise.errors import DataError


def test_qrels_round_trip_both_formats(tmp_path):
    qrels = {"q1": {"d1": 2, "d2": 0}, "q2": {"d3": 1}}
    for trec in (False, True):
        path = tmp_path / f"qrels-{trec}.txt"
        write_qrels(path, qrels, trec=trec)
        assert read_qrels(path) == qrels
    assert (tmp_path / "qrels-True.txt").read_text().splitlines()[0] == "q1 0 d1 2"


def test_run_written_in_trec_eval_order_and_read_back(tmp_path):
    run = {"q1": {"a": 1.0, "b": 2.0, "c": 1.0}}
    path = tmp_path / "run.trec"
    write_run(path, run, tag="t")
    assert path.read_text().splitlines() == ["q1 Q0 b 1 2.0 t", "q1 Q0 c 2 1.0 t", "q1 Q0 a 3 1.0 t"]
    assert read_run(path) == run


@pytest.mark.parametrize(
    "text, line, field, reason",
    [
        ("q1 Q0 d1 1 0.5 t\nq1 Q0 d1 2 0.4 t\n", 2, "docid", "appears twice"),
        ("q1 Q0 d1 1 nan t\n", 1, "score", "score is nan"),
        ("q1 Q0 d1 1 x t\n", 1, "score", "expected a number"),
        ("q1 Q0 d1 1\n", 1, None, "expected 6 columns"),
    ],
)
def test_bad_run_lines(tmp_path, text, line, field, reason):
    path = tmp_path / "run.trec"
    path.write_text(text)
    with pytest.raises(DataError) as exc:
        read_run(path)
    assert (exc.value.line, exc.value.field) == (line, field) and reason in str(exc.value)


@pytest.mark.parametrize(
    "text, line, field",
    [
        ("q1\td1\tx\n", 1, "score"),
        ("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td1\t0\n", 3, "corpus-id"),
        ("q1 d1\n", 1, None),
    ],
)
def test_bad_qrels_lines(tmp_path, text, line, field):
    path = tmp_path / "q.tsv"
    path.write_text(text)
    with pytest.raises(DataError) as exc:
        read_qrels(path)
    assert (exc.value.line, exc.value.field) == (line, field)


def test_lenient_run_drops_bad_lines_with_one_counted_warning(tmp_path, caplog):
    path = tmp_path / "run.trec"
    path.write_text("q1 Q0 d1 1 0.5 t\nq1 Q0 d1 2 0.4 t\nq1 Q0 d2 3 inf t\nq2 Q0 d1 1 0.1 t\n")
    lines: dict[str, int] = {}
    assert read_run(path, lenient=True, lines=lines) == {
        "q1": {"d1": 0.5},
        "q2": {"d1": 0.1},
    }  # the first occurrence is kept
    assert lines == {"q1": 1, "q2": 4}
    assert "dropped 1 line(s) with a duplicate document, 1 line(s) with a non-finite score" in caplog.text

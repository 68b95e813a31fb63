import json

import pytest

from rankwise.data import TeacherScores, examples_from_qrels, load_beir, load_examples, write_examples
from rankwise.errors import DataError


def _write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_text_form_with_scores_round_trip(tmp_path):
    path = _write(
        tmp_path / "ex.jsonl",
        [
            {
                "query": "q",
                "positives": ["p1"],
                "negatives": ["n1", "n2"],
                "scores": {"positives": [3.0], "negatives": [1.0, 0.5]},
            }
        ],
    )
    (ex,) = load_examples(path)
    assert ex.query == "q" and [t for _, t in ex.positives] == ["p1"] and [t for _, t in ex.negatives] == ["n1", "n2"]
    assert ex.scores == TeacherScores([3.0], [1.0, 0.5])
    write_examples(tmp_path / "out.jsonl", [ex])
    (again,) = load_examples(tmp_path / "out.jsonl")
    assert again == ex


def test_id_form_resolves_corpus(tmp_path, toy_beir):
    ds = load_beir(toy_beir, "train")
    path = _write(tmp_path / "ex.jsonl", [{"query_id": "q1", "positive_ids": ["d1"], "negative_ids": ["d2"]}])
    (ex,) = load_examples(path, ds)
    assert ex.query == "the facts" and ex.positives == [("d1", "T1 the ocean is deep and blue")]
    assert ex.negatives == [("d2", "python parses source code")]


@pytest.mark.parametrize(
    "row, field, reason",
    [
        ({"positives": ["p"]}, "query", "missing field"),
        ({"query": "q", "positives": []}, "positives", "no positive"),
        ({"query": "q", "positives": ["p", ""]}, "positives", "item 1 is empty"),
        ({"query": "q", "positives": "p"}, "positives", "expected a list"),
        ({"query": "q", "positives": ["p"], "scores": {"positives": [1, 2]}}, "scores.positives", "has 2 scores for 1"),
        (
            {"query": "q", "positives": ["p"], "negatives": ["n"], "scores": {"negatives": [1]}},
            "scores",
            "'positives' is missing",
        ),
        ({"query_id": "q1", "positive_ids": ["nope"]}, "positive_ids", "unknown document"),
        ({"query_id": "zz", "positive_ids": ["d1"]}, "query_id", "unknown query"),
    ],
)
def test_errors_name_line_and_field(tmp_path, toy_beir, row, field, reason):
    ds = load_beir(toy_beir, "train")
    path = _write(tmp_path / "ex.jsonl", [{"query": "ok", "positives": ["p"]}, row])
    with pytest.raises(DataError) as exc:
        load_examples(path, ds)
    assert (exc.value.line, exc.value.field) == (2, field) and reason in str(exc.value)


def test_examples_from_qrels_use_positive_grades_only(toy_beir):
    ds = load_beir(toy_beir, "test")
    exs = {ex.query_id: ex for ex in examples_from_qrels(ds)}
    assert set(exs) == {"q4", "q5", "q6", "q7"}
    assert [d for d, _ in exs["q4"].positives] == ["d4"]  # d5 is judged 0

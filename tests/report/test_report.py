from rankwise.report import metrics_table, per_query_delta, training_loss, write_report
from rankwise.report.document import Document

PNG = b"\x89PNG\r\n\x1a\n"


def test_figures_are_pngs(tmp_path):
    loss = training_loss(range(1, 101), [1 / s for s in range(1, 101)], tmp_path / "loss.png")
    delta = per_query_delta({"a": 0.5, "b": 0.2, "c": 1.0}, {"a": 0.7, "b": 0.2, "c": 0.0}, tmp_path / "d.png")
    for path in (loss, delta):
        data = path.read_bytes()
        assert data[:8] == PNG and len(data) > 5000


def test_markdown_report(tmp_path):
    table = metrics_table({"before": {"ndcg@10": 0.5, "map": 0.25}, "after": {"ndcg@10": 0.75, "map": 0.3}})
    assert Document("x", [table]).markdown().splitlines()[2:6] == [
        "| metric | before | after |",
        "|---|---:|---:|",
        "| ndcg@10 | 0.5000 | 0.7500 |",
        "| map | 0.2500 | 0.3000 |",
    ]
    training_loss([1, 2, 3], [3.0, 2.0, 1.0], tmp_path / "loss.png")
    path = write_report(
        tmp_path / "report.md", title="T", summary="S", columns={"x": {"map": 1.0}}, figures={"Loss": "loss.png"}
    )
    text = path.read_text()
    assert text.startswith("# T\n\nS\n") and "![Loss](loss.png)" in text
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 1 and "loss.png" not in page  # self-contained


def test_report_cells_explain_missing_values_and_escape_control_characters():
    from rankwise.report.run_report import Diagnostics, _snippet

    row = Diagnostics(0.9, 0.8, 0.1, 0.2, 0.05, float("nan"), float("nan")).row()
    assert row[:2] == ["0.9000", "0.8000"] and "nan" not in " ".join(row)
    assert row[-1].startswith("n/a: no query has two retrieved judged documents of different grades")
    assert _snippet("ring the bell\x07 now\x1b[31m") == "ring the bell\\x07 now\\x1b[31m"

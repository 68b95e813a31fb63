"""The command line, end to end on small data (and, marked slow, on the real model and data)."""

import json

import pytest

from tests.conftest import SHARED_DATA, run_cli


def test_bad_input_is_one_clear_line(monkeypatch, capsys, toy_beir, tmp_path):
    corpus = toy_beir / "corpus.jsonl"
    corpus.write_text(corpus.read_text() + '{"_id": "d0", "text": "again"}\n')
    code, out = run_cli(monkeypatch, capsys, "eval", "--data", toy_beir, "--out", tmp_path / "o")
    assert code == 2
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].endswith("corpus.jsonl:9, field '_id': duplicate id 'd0'")
    assert "Traceback" not in out
    corpus.write_text("".join(corpus.read_text().splitlines(keepends=True)[:-1]))  # repaired
    code, out = run_cli(monkeypatch, capsys, "eval", "--data", toy_beir, "--split", "dev", "--out", tmp_path / "o")
    assert code == 2 and "available: ['test', 'train']" in out  # brackets survive rich markup


def test_data_inspect(monkeypatch, capsys, toy_beir):
    (toy_beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq4\td5\t0\nq5\tghost\t1\nq6\td6\t1\n")
    code, out = run_cli(monkeypatch, capsys, "data", "inspect", toy_beir)
    assert code == 0
    text = " ".join(out.split())
    assert "8 documents, 8 queries" in text
    assert "1 queries have no relevant document" in text
    assert "dropped 1 judgements of documents missing from corpus.jsonl" in text


def test_eval_and_train_write_run_folders(monkeypatch, capsys, toy_beir, tiny_model_dir, tmp_path):
    out = tmp_path / "eval"
    code, text = run_cli(
        monkeypatch,
        capsys,
        "eval",
        "--data",
        toy_beir,
        "--split",
        "test",
        "--model",
        tiny_model_dir,
        "--out",
        out,
        "--max-length",
        32,
    )
    assert code == 0, text
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"ndcg@10", "mrr@10", "recall@100", "map"} and all(0 <= v <= 1 for v in metrics.values())
    assert {"run.trec", "config.toml", "report.md", "per_query.json"} <= {p.name for p in out.iterdir()}
    from rankwise.data import load_beir, read_run
    from rankwise.metrics import evaluate

    # the written run re-scores to the same figures
    assert evaluate(load_beir(toy_beir, "test").qrels, read_run(out / "run.trec")) == pytest.approx(metrics)

    tr = tmp_path / "train"
    code, text = run_cli(
        monkeypatch,
        capsys,
        "train",
        "--data",
        toy_beir,
        "--out",
        tr,
        "--model",
        tiny_model_dir,
        "--steps",
        4,
        "--batch-size",
        2,
        "--eval-split",
        "test",
        "--query-max-length",
        16,
        "--doc-max-length",
        32,
        "--eval-every",
        2,
    )
    assert code == 0, text
    summary = json.loads((tr / "metrics.json").read_text())
    assert set(summary["before"]) == set(summary["after"]) == set(metrics)
    assert {
        "model",
        "loss.png",
        "per_query_ndcg10.png",
        "report.md",
        "report.html",
        "config.toml",
        "run.trec",
        "run-before.trec",
        "history.json",
        "metrics_over_steps.png",
        "tensorboard",
    } <= {p.name for p in tr.iterdir()}
    history = json.loads((tr / "eval_history.json").read_text())
    assert [h["step"] for h in history] == [0, 2, 4]
    assert history[0]["metrics"] == pytest.approx(summary["before"]) and history[-1]["metrics"] == pytest.approx(
        summary["after"]
    )
    # TensorBoard holds the per-step training scalars and the periodic evaluations
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tr / "tensorboard")).Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3, 4]
    tb_eval = events.Scalars("eval/ndcg@10")
    assert [e.step for e in tb_eval] == [0, 2, 4]
    assert [e.value for e in tb_eval] == pytest.approx([h["metrics"]["ndcg@10"] for h in history], abs=1e-6)
    # config.toml is enough to re-run: same options, new folder
    code, text = run_cli(monkeypatch, capsys, "train", "--config", tr / "config.toml", "--out", tmp_path / "again")
    assert code == 0, text
    assert json.loads((tmp_path / "again" / "metrics.json").read_text())["after"] == summary["after"]


@pytest.mark.slow
def test_eval_default_model_on_trec_dl_5k(monkeypatch, capsys, tmp_path):
    """The foundation bar: sentence-transformers' own figures on this data (nDCG@10 0.798, R@100 0.803)."""
    folder = SHARED_DATA / "trec-dl-5k"
    if not folder.is_dir():
        pytest.skip(f"shared benchmark data not found at {folder}")
    code, text = run_cli(monkeypatch, capsys, "eval", "--data", folder, "--split", "test", "--out", tmp_path / "o")
    assert code == 0, text
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert metrics["ndcg@10"] == pytest.approx(0.798, abs=0.005)
    assert metrics["recall@100"] == pytest.approx(0.803, abs=0.005)
    # issue 5's bar: `rankwise compare` prints the significance of two runs' nDCG@10 difference (BM25 vs the model)
    from rankwise.data import load_beir, write_run
    from rankwise.index.retrieve import bm25_run

    write_run(tmp_path / "bm25.trec", bm25_run(load_beir(folder, "test"), 100, show_progress=False), tag="bm25")
    code, text = run_cli(
        monkeypatch,
        capsys,
        "compare",
        tmp_path / "bm25.trec",
        tmp_path / "o",
        "--metrics",
        "ndcg@10",
        "--out",
        tmp_path / "cmp.md",
    )
    assert code == 0, text
    cell = json.loads((tmp_path / "cmp.json").read_text())["runs"]["o"]["ndcg@10"]
    assert cell["mean"] == pytest.approx(metrics["ndcg@10"]) and cell["delta"] > 0.05 and cell["p"] < 0.05
    assert "p=" in text and "▲" in text


@pytest.mark.slow
def test_demo_runs_end_to_end(monkeypatch, capsys, tmp_path):
    """A short demo (2 steps): every artefact of the run folder is written."""
    monkeypatch.setenv("RANKWISE_CACHE", str(tmp_path / "cache"))
    code, text = run_cli(monkeypatch, capsys, "demo", "--out", tmp_path / "demo", "--steps", 2)
    assert code == 0, text
    metrics = json.loads((tmp_path / "demo" / "metrics.json").read_text())
    assert set(metrics) >= {"before", "after"} and metrics["before"]["ndcg@10"] > metrics["bm25"]["ndcg@10"] > 0.3
    names = {p.name for p in (tmp_path / "demo").iterdir()}
    assert {
        "config.toml",
        "metrics.json",
        "run.trec",
        "model",
        "report.md",
        "loss.png",
        "per_query_ndcg10.png",
    } <= names
    assert "checkpoints" not in names


def test_trained_model_folder_has_a_model_card_matching_metrics_json(
    monkeypatch, capsys, toy_beir, tiny_model_dir, tmp_path
):
    import re

    tr = tmp_path / "train"
    code, text = run_cli(
        monkeypatch, capsys, "train", "--data", toy_beir, "--out", tr, "--model", tiny_model_dir, "--steps", 2,
        "--batch-size", 2, "--eval-split", "test", "--query-max-length", 16, "--doc-max-length", 32,
    )  # fmt: skip
    assert code == 0, text
    card = (tr / "model" / "README.md").read_text()
    summary = json.loads((tr / "metrics.json").read_text())
    assert card.startswith('---\nlibrary_name: "sentence-transformers"') and f'base_model: "{tiny_model_dir}"' in card
    rows = {line.split("|")[1].strip(): line for line in card.splitlines() if line.startswith("| ") and "[" in line}
    for row, side in (("starting model (baseline)", "before"), ("fine-tuned", "after")):
        means = [float(m) for m in re.findall(r"\| (\d\.\d{4}) \[", rows[row])]
        assert means == pytest.approx([summary[side][m] for m in ("ndcg@10", "mrr@10", "recall@100", "map")], abs=6e-5)
    assert "p=" in rows["fine-tuned"] and "bootstrap CI" in card
    import hashlib

    digest = hashlib.sha256((toy_beir / "corpus.jsonl").read_bytes()).hexdigest()
    assert f"| toy/corpus.jsonl | `{digest}` |" in card
    assert f"rankwise train --config {tr / 'config.toml'}" in card and '"steps": 2' in card
    st = pytest.importorskip("sentence_transformers")
    st.SentenceTransformer(str(tr / "model"), device="cpu")  # the card does not get in the way of loading

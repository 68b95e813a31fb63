"""What a new user hit (issue: a finished model deleted, silent wrong numbers, late failures),
each class checked with an instance of its own: every test here fails on the code before the fix."""

from __future__ import annotations

import json

import numpy as np
import pytest

import rankwise as rw
from rankwise.errors import RankwiseError
from tests.conftest import run_cli, write_beir

TRAIN = ["--steps", 2, "--batch-size", 2, "--checkpoint-every", 1]


def _train(monkeypatch, capsys, data, model, out, *extra):
    return run_cli(monkeypatch, capsys, "train", "--data", data, "--model", model, "--out", out, *TRAIN, *extra)


def _last_line(text: str) -> str:
    lines = [x for x in text.splitlines() if x.strip()]
    assert lines and "Traceback" not in text, text
    return lines[-1]


# ----------------------------------------------------------------------------- data loss
def test_an_interrupt_after_training_keeps_the_model(monkeypatch, capsys, toy_beir, tiny_model_dir, tmp_path):
    import rankwise.jobs.train as job

    calls = {"n": 0}
    real = job.evaluate_model

    def interrupted(*a, **kw):  # the evaluation before training passes, the one after is cut short
        calls["n"] += 1
        if calls["n"] > 1:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(job, "evaluate_model", interrupted)
    out = tmp_path / "run"
    code, _ = _train(monkeypatch, capsys, toy_beir, tiny_model_dir, out, "--eval-split", "test")
    assert code != 0 and calls["n"] == 2  # click turns Ctrl-C into an abort
    assert (out / "model" / "model.safetensors").is_file()
    assert rw.BiEncoder.load(str(out / "model")).encode(["still here"]).shape[0] == 1


def test_a_bad_test_file_fails_before_any_ltr_training(monkeypatch, capsys, tmp_path):
    from rankwise.data.letor import write_letor
    from tests.models.test_feature_scorer import toy_letor

    write_letor(tmp_path / "train.txt", toy_letor(20, seed=1))
    (tmp_path / "test.txt").write_text("1 qid:1 1:0.5\n0 qid:1 2:x\n")
    out = tmp_path / "run"
    code, text = run_cli(
        monkeypatch, capsys, "ltr", "train", "--train", tmp_path / "train.txt", "--test", tmp_path / "test.txt",
        "--out", out, "--steps", 30,
    )  # fmt: skip
    assert code == 2 and "test.txt:2, field 'feature 2'" in _last_line(text)
    assert not out.exists()  # nothing trained, nothing written


def test_resume_of_a_finished_run_is_refused_and_options_are_checked_against_config(
    monkeypatch, capsys, toy_beir, tiny_model_dir, tmp_path
):
    out = tmp_path / "run"
    code, text = _train(monkeypatch, capsys, toy_beir, tiny_model_dir, out)
    assert code == 0, text
    model_bytes = (out / "model" / "model.safetensors").read_bytes()
    code, text = _train(monkeypatch, capsys, toy_beir, tiny_model_dir, out, "--resume", "--lr", 0.5)
    assert code == 2 and "lr: 2e-05 in" in _last_line(text) and "config.toml" in _last_line(text)
    code, text = _train(monkeypatch, capsys, toy_beir, tiny_model_dir, out, "--resume", "--keep-final-checkpoint")
    assert code == 2 and "holds a finished run" in _last_line(text)  # an option that does not train: no block
    assert (out / "model" / "model.safetensors").read_bytes() == model_bytes


def test_ltr_resume_of_a_finished_run_is_refused(monkeypatch, capsys, tmp_path):
    from rankwise.data.letor import write_letor
    from tests.models.test_feature_scorer import toy_letor

    write_letor(tmp_path / "train.txt", toy_letor(20, seed=1))
    out = tmp_path / "run"
    args = ["ltr", "train", "--train", tmp_path / "train.txt", "--out", out, "--steps", 4]
    assert run_cli(monkeypatch, capsys, *args)[0] == 0
    model_bytes = (out / "model" / "model.safetensors").read_bytes()
    code, text = run_cli(monkeypatch, capsys, *args, "--resume", "--lr", 0.5)
    assert code == 2 and "other options" in _last_line(text)
    code, text = run_cli(monkeypatch, capsys, *args, "--resume")
    assert code == 2 and "holds a finished run" in _last_line(text)
    assert (out / "model" / "model.safetensors").read_bytes() == model_bytes


def test_mine_never_replaces_an_existing_file_silently(monkeypatch, capsys, toy_beir, tmp_path):
    out = tmp_path / "neg.jsonl"
    args = ["mine", "--data", toy_beir, "--out", out, "--k", 1, "--split", "train"]
    assert run_cli(monkeypatch, capsys, *args)[0] == 0
    first = out.read_text()
    code, text = run_cli(monkeypatch, capsys, *args, "--seed", 7, "--sampling", "uniform")
    assert code == 2 and "--overwrite" in _last_line(text)
    assert out.read_text() == first
    assert run_cli(monkeypatch, capsys, *args, "--overwrite")[0] == 0
    code, text = run_cli(monkeypatch, capsys, "mine", "--data", toy_beir, "--out", tmp_path, "--split", "train")
    assert code == 2 and "is a folder" in _last_line(text) and not list(tmp_path.glob("*.partial*"))


# ------------------------------------------------------------------- wrong results, silently
def test_a_corpus_field_named_split_does_not_drop_judged_queries(monkeypatch, capsys, tmp_path):
    docs = [{"_id": f"d{i}", "text": f"topic {i} words", "split": "a" if i % 2 else "b"} for i in range(6)]
    queries = [{"_id": f"q{i}", "text": f"topic {i}"} for i in range(6)]
    folder = write_beir(tmp_path / "ds", docs, queries, {"test": [(f"q{i}", f"d{i}", 1) for i in range(6)]})
    code, text = run_cli(monkeypatch, capsys, "eval", "--data", folder, "--retriever", "bm25", "--out", tmp_path / "e")
    assert code == 0, text
    ranking = json.loads((tmp_path / "e" / "per_query.json").read_text())["ndcg@10"]
    assert len(ranking) == 6  # every judged query scored, whatever the records' metadata


def test_cli_training_lengths_are_not_saved_into_the_model(monkeypatch, capsys, toy_beir, tiny_model_dir, tmp_path):
    base = rw.BiEncoder.load(str(tiny_model_dir))
    out = tmp_path / "run"
    code, text = _train(
        monkeypatch, capsys, toy_beir, tiny_model_dir, out, "--query-max-length", 8, "--doc-max-length", 12
    )
    assert code == 0, text
    again = rw.BiEncoder.load(str(out / "model"))
    assert (again.config.query_max_length, again.config.doc_max_length) == (
        base.config.query_max_length,
        base.config.doc_max_length,
    )


def test_single_texts_and_pairs_are_taken_as_sentence_transformers_takes_them(tiny_model_dir):
    dual = rw.BiEncoder.load(str(tiny_model_dir))
    one = dual.encode("hello world")
    assert one.shape == (dual.backbone.config.hidden_size,)
    np.testing.assert_allclose(one, dual.encode(["hello world"])[0], rtol=1e-6)
    ce = rw.CrossEncoder(tiny_model_dir, seed=0)
    assert np.ndim(ce.predict(("q", "d"))) == 0
    assert float(ce.predict(("q", "d"))) == pytest.approx(float(ce.predict([("q", "d")])[0]), rel=1e-6)


def test_library_and_cli_agree_on_partial_coverage(monkeypatch, capsys, tmp_path):
    from rankwise.data.trec import write_run

    qrels = {f"q{i}": {f"d{i}": 1} for i in range(6)}
    full = {q: {next(iter(j)): 1.0} for q, j in qrels.items()}
    part = {q: full[q] for q in ("q0", "q1")}
    with pytest.raises(RankwiseError, match="cover different judged queries"):
        rw.compare(qrels, {"full": full, "part": part}, baseline="full")
    with pytest.raises(RankwiseError, match="qrels are empty"):
        rw.evaluate({}, full)
    write_run(tmp_path / "part.trec", part)
    (tmp_path / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\td{q[1:]}\t1\n" for q in qrels))
    folder = write_beir(
        tmp_path / "ds",
        [{"_id": f"d{i}", "text": "t"} for i in range(6)],
        [{"_id": q, "text": "q"} for q in qrels],
        {"test": [(q, f"d{q[1:]}", 1) for q in qrels]},
    )
    code, text = run_cli(monkeypatch, capsys, "eval", "--run", tmp_path / "part.trec", "--data", folder)
    assert code == 0, text
    assert "covers 2 of 6 judged queries" in " ".join(text.split())


def test_ltr_keeps_the_best_of_every_evaluated_step_including_the_last(monkeypatch, capsys, tmp_path):
    from rankwise.data.letor import write_letor
    from tests.models.test_feature_scorer import toy_letor

    write_letor(tmp_path / "train.txt", toy_letor(30, seed=1))
    out = tmp_path / "run"
    code, text = run_cli(
        monkeypatch, capsys, "ltr", "train", "--train", tmp_path / "train.txt", "--out", out, "--steps", 5,
        "--eval-every", 2, "--lr", 0.05,
    )  # fmt: skip
    assert code == 0, text
    summary = json.loads((out / "metrics.json").read_text())
    assert [e["step"] for e in summary["evals"]] == [2, 4, 5]
    code, text = run_cli(
        monkeypatch, capsys, "ltr", "train", "--train", tmp_path / "train.txt", "--out", tmp_path / "short",
        "--steps", 6,
    )  # fmt: skip
    assert code == 0, text
    short = json.loads((tmp_path / "short" / "metrics.json").read_text())
    assert short["best_step"] >= 1 and [e["step"] for e in short["evals"]] == [6]
    assert "eval_every = 6" in (tmp_path / "short" / "config.toml").read_text()


def test_ids_with_whitespace_are_refused_at_load_naming_file_line_and_field(tmp_path):
    from rankwise.data import load_beir

    folder = write_beir(
        tmp_path / "ds",
        [{"_id": "d 1", "text": "a"}],
        [{"_id": "q1", "text": "a"}],
        {"test": [("q1", "d 1", 1)]},
    )
    with pytest.raises(RankwiseError, match=r"corpus\.jsonl:1, field '_id': id 'd 1' contains whitespace"):
        load_beir(folder, "test")


# ---------------------------------------------------------------- late failures, confusing
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["eval", "--k", 0], "--k 0: documents retrieved"),
        (["eval", "--max-length", 100000], "--max-length 100000: expected"),
        (["eval", "--max-length", 0], "--max-length 0: expected"),
        (["eval", "--retriever", "bm25", "--model", "x"], "takes no model"),
        (["eval", "--retriever", "bm25", "--fusion", "rrf"], "--fusion rrf: fuses several retrievers"),
        (["eval", "--retriever", "splade"], "--retriever splade: expected dense, bm25"),
        (["eval", "--metrics", "map"], "--metrics goes with --run"),
    ],
)
def test_bad_numbers_and_conflicts_are_one_line_before_any_work(
    monkeypatch, capsys, toy_beir, tmp_path, args, expected
):
    out = tmp_path / "e"
    code, text = run_cli(monkeypatch, capsys, *args, "--data", toy_beir, "--out", out)
    assert code == 2 and expected in _last_line(text) and len(text.strip().splitlines()) == 1
    assert not out.exists()


def test_train_file_missing_and_resume_with_overwrite_are_one_line(monkeypatch, capsys, toy_beir, tmp_path):
    code, text = run_cli(
        monkeypatch, capsys, "train", "--data", toy_beir, "--out", tmp_path / "r", "--train-file", tmp_path / "no.jsonl"
    )
    assert code == 2 and "no such file" in _last_line(text)
    code, text = run_cli(
        monkeypatch, capsys, "train", "--data", toy_beir, "--out", tmp_path / "r", "--resume", "--overwrite"
    )
    assert code == 2 and "give one of them" in _last_line(text)


def test_a_config_file_with_keys_outside_train_is_refused(tmp_path):
    from rankwise.training.config import load_config

    path = tmp_path / "c.toml"
    path.write_text("[train]\nsteps = 3\n\n[trian]\nlr = 0.1\n")
    with pytest.raises(RankwiseError, match="'trian' is outside"):
        load_config(path)


def test_a_text_form_train_file_needs_no_data(monkeypatch, capsys, tiny_model_dir, tmp_path):
    rows = [{"query": f"q {i}", "positives": [f"document {i}"]} for i in range(4)]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, text = run_cli(
        monkeypatch, capsys, "train", "--train-file", tmp_path / "t.jsonl", "--model", tiny_model_dir,
        "--out", tmp_path / "r", *TRAIN,
    )  # fmt: skip
    assert code == 0, text
    assert (tmp_path / "r" / "model").is_dir()


def test_a_non_utf8_file_names_its_line(tmp_path):
    from rankwise.data.beir import load_corpus

    path = tmp_path / "corpus.jsonl"
    path.write_bytes(b'{"_id": "a", "text": "ok"}\n{"_id": "b", "text": "caf\xe9"}\n')
    with pytest.raises(RankwiseError, match=r"corpus\.jsonl:2: not UTF-8"):
        load_corpus(path)


def test_models_print_as_a_summary(tiny_model_dir):
    text = repr(rw.BiEncoder.load(str(tiny_model_dir)))
    assert text.startswith("BiEncoder(") and "\n" not in text
    assert repr(rw.CrossEncoder(tiny_model_dir, seed=0)).startswith("CrossEncoder(")

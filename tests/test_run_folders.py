"""Run folders never mix two runs, refusals come before any work and in one line, empty inputs are
not results, and results go to stdout: what a new user hit, tried again."""

from __future__ import annotations

import json
import os
import stat

import pytest

from rankwise.data import load_beir, read_run, write_run
from tests.conftest import run_cli

TRAIN = ["--steps", 4, "--batch-size", 2, "--query-max-length", 16, "--doc-max-length", 16, "--checkpoint-every", 2]


def _train(monkeypatch, capsys, toy_beir, model, out, *extra):
    return run_cli(monkeypatch, capsys, "train", "--data", toy_beir, "--model", model, "--out", out, *TRAIN, *extra)


def _one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


def test_a_run_folder_is_never_reused_silently(monkeypatch, capsys, toy_beir, tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    code, text = _train(monkeypatch, capsys, toy_beir, tiny_model_dir, out, "--eval-split", "test")
    assert code == 0, text
    assert (out / "run.trec").is_file() and not (out / "checkpoints").exists()  # a finished run keeps its model only
    mode = stat.S_IMODE((out / "model" / "model.safetensors").stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask  # files follow the user's umask
    code, text = _train(monkeypatch, capsys, toy_beir, tiny_model_dir, out)
    assert code == 2 and "is not empty: --overwrite clears it first, --resume continues its training" in _one_line(text)
    code, text = _train(monkeypatch, capsys, toy_beir, tiny_model_dir, out, "--overwrite")
    assert code == 0, text
    assert not (out / "run.trec").exists() and not (out / "run-before.trec").exists()  # nothing of the old run


def test_a_refused_resume_writes_nothing_and_names_the_options(monkeypatch, capsys, toy_beir, tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    code, text = _train(monkeypatch, capsys, toy_beir, tiny_model_dir, out, "--keep-final-checkpoint")
    assert code == 0, text
    before = (out / "config.toml").read_text()
    code, text = _train(
        monkeypatch, capsys, toy_beir, tiny_model_dir, out, "--resume", "--keep-final-checkpoint", "--lr", 0.5
    )
    line = _one_line(text)
    assert code == 2 and "lr: 2e-05 in the checkpoint, 0.5 now" in line
    assert (out / "config.toml").read_text() == before


def test_resume_cleans_a_killed_checkpoint_write_and_says_where_it_starts(
    monkeypatch, capsys, toy_beir, tiny_model_dir, tmp_path
):
    out = tmp_path / "run"
    code, text = _train(monkeypatch, capsys, toy_beir, tiny_model_dir, out, "--keep-final-checkpoint")
    assert code == 0, text
    stale = out / "checkpoints" / ".step-0000006.pt.abc123"  # what a kill during torch.save leaves
    stale.write_bytes(b"\0" * 1024)
    # a finished run is refused as finished; more steps with the same options extend it
    code, text = _train(monkeypatch, capsys, toy_beir, tiny_model_dir, out, "--resume", "--keep-final-checkpoint")
    assert code == 2 and "holds a finished run" in _one_line(text)
    code, text = _train(
        monkeypatch, capsys, toy_beir, tiny_model_dir, out, "--resume", "--keep-final-checkpoint", "--steps", 6
    )
    assert code == 0, text
    assert "resuming from" in text and "step-0000004.pt (step 4)" in " ".join(text.split())
    assert not stale.exists()


def test_a_failed_run_leaves_no_folder(monkeypatch, capsys, toy_beir, tiny_model_dir, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "positives": []}\n')
    out = tmp_path / "never"
    code, text = _train(monkeypatch, capsys, toy_beir, tiny_model_dir, out, "--train-file", bad)
    assert code == 2 and "bad.jsonl:1, field 'positives': no positive" in _one_line(text)
    assert not out.exists()


@pytest.mark.parametrize("command", ["eval", "train", "mine", "compare"])
def test_an_unwritable_output_is_refused_before_any_work(
    monkeypatch, capsys, toy_beir, tiny_model_dir, tmp_path, command
):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    target = blocker / "out"  # a folder inside a file cannot be made, even by root
    args = {
        "eval": ["eval", "--data", toy_beir, "--model", tiny_model_dir, "--out", target],
        "train": ["train", "--data", toy_beir, "--model", tiny_model_dir, "--out", target, *TRAIN],
        "mine": ["mine", "--data", toy_beir, "--out", target / "neg.jsonl", "--window", "1-5"],
        "compare": [
            "compare",
            "--qrels",
            toy_beir / "qrels" / "test.tsv",
            "--out",
            target / "t.md",
            tmp_path / "r.trec",
        ],
    }[command]
    write_run(tmp_path / "r.trec", {"q4": {"d4": 1.0}})
    code, text = run_cli(monkeypatch, capsys, *args)
    assert code == 2 and "cannot write to" in _one_line(text) and "a-file" in text


def test_empty_inputs_are_not_results(monkeypatch, capsys, toy_beir, tmp_path):
    (toy_beir / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\n")
    code, text = run_cli(monkeypatch, capsys, "eval", "--data", toy_beir, "--split", "dev", "--out", tmp_path / "e")
    assert code == 2 and "dev.tsv: split 'dev' has no judgements" in _one_line(text)
    code, text = run_cli(monkeypatch, capsys, "data", "inspect", toy_beir)
    assert code == 0 and "dev: " in text and "no judgements" in text and "no problems found" not in text
    (tmp_path / "empty.trec").write_text("")
    code, text = run_cli(monkeypatch, capsys, "compare", "--data", toy_beir, "--split", "test", tmp_path / "empty.trec")
    assert code == 2 and "empty.trec: no run lines" in _one_line(text)


def test_compare_refuses_runs_over_different_queries(monkeypatch, capsys, toy_beir, tmp_path):
    qrels = load_beir(toy_beir, "test").qrels
    write_run(tmp_path / "all.trec", {q: {d: 1.0 for d in j} for q, j in qrels.items()})
    write_run(tmp_path / "half.trec", {q: {d: 1.0 for d in j} for q, j in list(qrels.items())[:2]})
    args = ["compare", "--data", toy_beir, "--split", "test", tmp_path / "all.trec", tmp_path / "half.trec"]
    code, text = run_cli(monkeypatch, capsys, *args)
    line = _one_line(text)
    assert code == 2 and "all covers 4, half covers 2 of 4" in line and "--common" in line
    code, text = run_cli(monkeypatch, capsys, *args, "--common", "--metrics", "ndcg@10")
    assert code == 0 and "the 2 of 4 judged queries all runs cover" in " ".join(text.split())


def test_results_go_to_stdout_and_paths_resolve_from_anywhere(monkeypatch, capsys, toy_beir, tmp_path):
    import sys

    from rankwise.cli import app

    monkeypatch.chdir(toy_beir.parent)
    for name in ("bm25", "b2"):  # relative paths, as a user types them
        monkeypatch.setattr(
            sys, "argv", ["rankwise", "eval", "--data", toy_beir.name, "--retriever", "bm25", "--out", name]
        )
        with pytest.raises(SystemExit) as done:
            app()
        assert not done.value.code
    captured = capsys.readouterr()
    assert "ndcg@10" in captured.out and "run folder: b2" in captured.out  # the table is on stdout
    assert "ndcg@10" not in captured.err
    table = (toy_beir.parent / "bm25" / "config.toml").read_text()
    assert f'data = "{toy_beir}"' in table  # absolute: compare and report work from anywhere
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, text = run_cli(monkeypatch, capsys, "compare", toy_beir.parent / "bm25", toy_beir.parent / "b2")
    assert code == 0, text
    assert read_run(toy_beir.parent / "bm25" / "run.trec") == read_run(toy_beir.parent / "b2" / "run.trec")


def test_version_bad_spec_values_and_bom(monkeypatch, capsys, toy_beir, tiny_model_dir, tmp_path):
    from rankwise import __version__

    code, text = run_cli(monkeypatch, capsys, "--version")
    assert code == 0 and text.strip() == f"rankwise {__version__}"
    code, text = _train(
        monkeypatch, capsys, toy_beir, tiny_model_dir, tmp_path / "x", "--loss", "infonce:temperature=abc"
    )
    assert code == 2 and "parameter 'temperature' has a bad value 'abc' (expected float)" in _one_line(text)
    assert not (tmp_path / "x").exists()
    queries = toy_beir / "queries.jsonl"
    queries.write_bytes(b"\xef\xbb\xbf" + queries.read_bytes())  # a UTF-8 byte-order mark
    assert len(load_beir(toy_beir, "test").queries) == 8
    json.loads(queries.read_text(encoding="utf-8-sig").splitlines()[0])

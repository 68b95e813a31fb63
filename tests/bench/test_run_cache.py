"""benchmarks/_cache.py: finished runs and resumable work folders are reused only on the code they ran on."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

import rankwise.losses  # noqa: E402,F401  (a module the runs below "ran on")
from benchmarks._cache import RunCache


@pytest.fixture
def cache(monkeypatch, tmp_path) -> RunCache:
    monkeypatch.setenv("RANKWISE_CACHE", str(tmp_path))
    return RunCache("t")


def _edit_recorded_code(path: Path) -> None:
    saved = json.loads(path.read_text())
    saved["code"]["rankwise.losses"] = "0" * 64  # as if the module had changed since
    path.write_text(json.dumps(saved))


def test_a_finished_run_is_reused_only_on_its_code(cache):
    settings = {"loss": "infonce", "seed": 1}
    assert cache.get(settings) is None
    cache.put(settings, {"ndcg@10": 0.5})
    assert cache.get(settings) == {"ndcg@10": 0.5}
    assert cache.get({"loss": "infonce", "seed": 2}) is None
    _edit_recorded_code(cache.folder(settings) / "result.json")
    assert cache.get(settings) is None


def test_run_makes_a_result_once_in_its_work_folder(cache):
    calls = []

    def make(folder: Path) -> dict:
        calls.append(folder)
        (folder / "model.bin").write_text("weights")
        return {"ndcg@10": 0.7}

    settings = {"recipe": "ngame"}
    assert cache.run(settings, make) == {"ndcg@10": 0.7}
    assert cache.run(settings, make) == {"ndcg@10": 0.7} and len(calls) == 1  # the stored result
    assert calls[0] == cache.folder(settings) and (calls[0] / "started.json").is_file()
    _edit_recorded_code(cache.folder(settings) / "result.json")
    assert cache.run(settings, make) == {"ndcg@10": 0.7} and len(calls) == 2  # stale: made again


def test_a_killed_run_resumes_only_on_the_code_it_started_on(cache):
    settings = {"system": "dual"}
    assert not cache.started(settings)
    folder = cache.workdir(settings)
    (folder / "checkpoint.pt").write_text("step 50")
    assert cache.started(settings) and not cache.started({"system": "cross"})
    assert (cache.workdir(settings) / "checkpoint.pt").is_file()  # same code: resume
    _edit_recorded_code(folder / "started.json")
    assert not cache.started(settings)
    assert not (cache.workdir(settings) / "checkpoint.pt").exists()  # other code: start over
    cache.put(settings, {"done": True})
    assert not cache.started(settings)  # finished
    (folder / "model").mkdir()
    _edit_recorded_code(folder / "result.json")  # a finished but stale run leaves nothing behind
    assert cache.get(settings) is None and not (cache.workdir(settings) / "model").exists()


def test_a_kept_record_carries_a_finished_run_to_a_fresh_machine(monkeypatch, tmp_path):
    keep = tmp_path / "repo" / "runs"
    monkeypatch.setenv("RANKWISE_CACHE", str(tmp_path / "machine-1"))
    first = RunCache("t", keep=keep, shrink=lambda r: {k: v for k, v in r.items() if k != "big"})
    settings = {"recipe": "bm25", "seed": 0}
    first.put(settings, {"ndcg@10": 0.74, "big": [1.0] * 10})
    kept = first.kept(settings)
    assert kept is not None and kept.is_file() and kept.parent == keep
    again = kept.read_bytes()
    first.put(settings, {"ndcg@10": 0.74, "big": [1.0] * 10})
    assert kept.read_bytes() == again  # a record rewritten unchanged is the same bytes (no git churn)

    monkeypatch.setenv("RANKWISE_CACHE", str(tmp_path / "machine-2"))  # a fresh machine: no local cache
    fresh = RunCache("t", keep=keep)
    assert fresh.get(settings) == {"ndcg@10": 0.74}  # shrunk as kept
    assert fresh.get({"recipe": "bm25", "seed": 1}) is None
    assert RunCache("t").get(settings) is None  # without keep, only the machine's cache counts

    saved = json.loads(gzip.decompress(kept.read_bytes()))
    saved["code"]["rankwise.losses"] = "0" * 64  # the code changed since the run
    kept.write_bytes(gzip.compress(json.dumps(saved).encode()))
    assert fresh.get(settings) is None


def test_a_run_finished_before_keep_was_given_is_kept_when_read(cache, tmp_path):
    settings = {"recipe": "dense", "seed": 0}
    cache.put(settings, {"ndcg@10": 0.72})
    keeping = RunCache("t", keep=tmp_path / "runs")
    assert not keeping.kept(settings).exists()
    assert keeping.get(settings) == {"ndcg@10": 0.72}
    assert json.loads(gzip.decompress(keeping.kept(settings).read_bytes()))["result"] == {"ndcg@10": 0.72}


def test_a_run_is_stale_when_a_librarys_version_or_the_benchmark_module_changed():
    from benchmarks._cache import code_in_use, same_code

    code = code_in_use()
    assert same_code(code) and "version:torch" in code and "version:sentence-transformers" in code
    assert not same_code(code | {"version:torch": "0.0"})  # another torch: the cached run is not reused
    assert not same_code(code | {"script:no_such_benchmark.py": "0" * 64})
    assert any(name.startswith("benchmarks.") for name in code)  # the benchmark modules in use are keyed too


def test_commit_ignores_benchmark_outputs(tmp_path, monkeypatch):
    """A results file written by the run itself does not mark the code dirty; a source edit does."""
    import subprocess

    import benchmarks._machine as m

    repo = tmp_path / "repo"
    (repo / "benchmarks" / "results").mkdir(parents=True)
    (repo / "src").mkdir()
    (repo / "src" / "a.py").write_text("x = 1\n")
    (repo / "benchmarks" / "results" / "r.json").write_text("{}\n")
    git = ["git", "-c", "user.email=a@b", "-c", "user.name=a"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "-C", str(repo), "add", "."], check=True)
    subprocess.run([*git, "-C", str(repo), "commit", "-qm", "x"], check=True)
    monkeypatch.setattr(m, "__file__", str(repo / "benchmarks" / "_machine.py"))
    monkeypatch.delenv("RANKWISE_COMMIT", raising=False)
    (repo / "benchmarks" / "results" / "r.json").write_text('{"a": 1}\n')
    assert not m.commit().endswith("+dirty")
    (repo / "src" / "a.py").write_text("x = 2\n")
    assert m.commit().endswith("+dirty")


def test_a_killed_run_starts_over_when_a_module_it_had_not_imported_yet_changed(cache):
    """A run cut off after mining resumes from its negatives only if the miner is the same code, even
    though the miner was imported after the run started."""
    from benchmarks._cache import code_tree, same_code

    tree = code_tree()
    assert "file:rankwise/negatives/mining.py" in tree and "file:benchmarks/_cache.py" in tree
    assert same_code(tree) and not same_code(tree | {"file:rankwise/no_such_module.py": "0" * 64})
    settings = {"system": "adapt"}
    folder = cache.workdir(settings)
    (folder / "negatives.jsonl").write_text("mined")
    started = folder / "started.json"
    saved = json.loads(started.read_text())
    assert saved["code"] == tree
    saved["code"]["file:rankwise/negatives/teacher.py"] = "0" * 64  # the teacher changed since
    started.write_text(json.dumps(saved))
    assert not cache.started(settings) and not (cache.workdir(settings) / "negatives.jsonl").exists()

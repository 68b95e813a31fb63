"""benchmarks/_cache.py: finished runs and resumable work folders are reused only on the code they ran on."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import rankwise.losses  # noqa: E402,F401  (a module the runs below "ran on")
from _cache import RunCache  # noqa: E402


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

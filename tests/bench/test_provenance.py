"""Every results file says which code and which library versions made it (benchmarks/_machine.py)."""

from __future__ import annotations

import json

import pytest

from benchmarks._machine import write_result
from benchmarks.settings import RESULTS

FILES = sorted(RESULTS.glob("*.json"))


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_result_has_commit_and_versions_at_the_top(path):
    result = json.loads(path.read_text(encoding="utf-8"))
    assert list(result)[:2] == ["commit", "versions"]
    versions = result["versions"]
    assert {"torch", "transformers", "sentence-transformers"} <= set(versions)
    assert versions["torch"]  # every run recorded its torch
    unknown = result["commit"] is None or any(v is None for v in versions.values())
    assert not unknown or "recorded" in result.get("provenance_note", "")  # a gap is said, never filled in


def test_write_result_stamps_the_commit_and_the_peers_versions(tmp_path):
    out = tmp_path / "r.json"
    write_result(out, {"figure": 1.0}, ("ranx", "no-such-peer-package"))
    result = json.loads(out.read_text())
    assert list(result) == ["commit", "versions", "figure"]
    assert result["versions"]["ranx"] and result["versions"]["no-such-peer-package"] is None
    assert result["versions"]["torch"] and result["versions"]["sentence-transformers"]
    assert result["commit"] is None or len(result["commit"].split("+")[0]) == 40

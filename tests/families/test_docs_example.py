"""docs/model-families.md's first Python block runs as written: a new family is defined and
registered, trains with two losses, evaluates, reranks in a pipeline, and saves and loads."""

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

DOC = Path(__file__).parents[2] / "docs" / "model-families.md"


@pytest.mark.slow
def test_the_documented_family_runs_as_written(tmp_path):
    block = re.search(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S).group(1)
    script = tmp_path / "family.py"
    script.write_text(block, encoding="utf-8")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "listnet final loss" in out.stdout and "lambdaloss:ndcg2pp final loss" in out.stdout
    ndcg = float(re.search(r"test, BM25 reranked: ([0-9.]+)", out.stdout).group(1))
    assert 0.0 < ndcg <= 1.0
    assert time.perf_counter() - t0 < 180

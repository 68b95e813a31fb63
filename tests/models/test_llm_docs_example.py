"""docs/llm-rerankers.md's Python block runs as written (offline, a small LM built from a config)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).parents[2] / "docs" / "llm-rerankers.md"


@pytest.mark.slow
def test_the_documented_example_runs_as_written(tmp_path):
    block = re.search(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S).group(1)
    out = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    before, after = (float(x) for x in re.findall(r"'ndcg@10': ([0-9.]+)", out.stdout.splitlines()[-1]))
    assert 0 < before <= 1 and 0 <= after <= 1

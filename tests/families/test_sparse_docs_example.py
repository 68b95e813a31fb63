"""docs/sparse-and-multi-vector.md's Python block runs as written."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).parents[2] / "docs" / "sparse-and-multi-vector.md"


@pytest.mark.slow
def test_the_documented_example_runs_as_written(tmp_path):
    block = re.search(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S).group(1)
    script = tmp_path / "example.py"
    script.write_text(block.replace("/tmp/my-splade", str(tmp_path / "my-splade")), encoding="utf-8")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert [x.split()[0] for x in lines[:3]] == ["SparseEncoder", "SparseEncoder", "MultiVectorEncoder"]
    assert lines[-1] == "(2, 3)"

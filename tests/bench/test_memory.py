import subprocess
import sys

import numpy as np
import pytest

from benchmarks._memory import peak_rss_mb

CHILD = "from benchmarks._memory import peak_rss_mb; print(peak_rss_mb())"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the inherited high-water mark is Linux's")
def test_a_child_process_reports_its_own_peak_not_its_parents():
    held = np.ones(50_000_000)  # 400 MB resident in this process when the child starts
    assert peak_rss_mb() > 400
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True)
    assert 5 < float(out.stdout) < 200, out.stdout  # a bare interpreter with numpy, not the parent's 400 MB
    del held

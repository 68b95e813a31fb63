"""Progress bars keep the step count and the time left on a narrow terminal."""

import io

from rich.console import Console

import rankwise.progress as progress


def test_a_narrow_terminal_still_shows_the_count_and_the_eta(monkeypatch):
    buf = io.StringIO()
    monkeypatch.setattr(progress, "console", Console(file=buf, width=80, force_terminal=True, color_system=None))
    with progress.task("train", 180) as advance:
        advance(3, info="loss 0.4321  lr 1.00e-04  3.9 ex/s  364 tok/s  pad 41%  peak 3.0 GB" * 2)
    lines = [line for line in buf.getvalue().replace("\r", "\n").splitlines() if "train" in line]
    assert lines and "3/180" in lines[-1] and "eta" in lines[-1]

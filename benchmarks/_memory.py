"""A benchmark process's peak resident memory.

``getrusage(RUSAGE_SELF).ru_maxrss`` is not the peak of the process alone on Linux: a child made by
fork (or vfork, as ``subprocess`` does) and exec inherits its parent's high-water mark, so a
training run in its own process reported at least the RSS of the benchmark that spawned it.
``VmHWM`` in ``/proc/self/status`` is the high-water mark of the process's own address space,
which exec starts afresh.
"""

from __future__ import annotations

import resource
import sys


def peak_rss_mb() -> float:
    """Peak resident memory of this process, in MB (``VmHWM``; ``ru_maxrss`` where there is no /proc)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, kB elsewhere

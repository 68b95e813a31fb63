"""Rich progress bars for every long step (encoding, search, training)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Column

console = Console(stderr=True, soft_wrap=True)  # progress and logs (a long path is not broken across lines)
results = Console(soft_wrap=True)  # tables and results: stdout, so `rankwise eval ... > out.txt` keeps them


@contextmanager
def task(description: str, total: int | None, *, enabled: bool = True) -> Iterator[Callable[..., None]]:
    """Yield ``advance(n=1, **fields)``; the bar shows count, elapsed and remaining time."""
    if not enabled:
        yield lambda n=1, **_: None
        return
    # counts and times first: on a narrow terminal the bar and the info shrink, not the step count
    columns = [
        TextColumn("[bold]{task.description}"),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        BarColumn(bar_width=16),
        # the info gets what is left, so it is cut, not the count
        TextColumn(
            "{task.fields[info]}",
            table_column=Column(no_wrap=True, overflow="ellipsis", max_width=max(10, console.width - 64)),
        ),
    ]
    with Progress(*columns, console=console, transient=False) as progress:
        tid = progress.add_task(description, total=total, info="")

        def advance(n: int = 1, info: str | None = None) -> None:
            progress.update(tid, advance=n, **({"info": info} if info is not None else {}))

        yield advance

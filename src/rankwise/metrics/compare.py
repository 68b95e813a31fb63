"""Several runs on the same qrels: every metric per run with a bootstrap confidence interval,
and each run's difference from a baseline with a paired significance test, Holm-corrected over
the runs compared (see :mod:`rankwise.metrics.significance`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from rankwise.metrics.ranking import DEFAULT_METRICS, evaluate_arrays
from rankwise.metrics.significance import Comparison, bootstrap_ci, compare_systems


@dataclass
class RunComparison:
    metrics: list[str]
    baseline: str
    test: str
    alpha: float
    n_queries: int
    cells: dict[str, dict[str, Comparison]]  # run -> metric -> comparison (the baseline: delta 0, p 1)
    per_query: dict[str, dict[str, np.ndarray]]

    def marker(self, run: str, metric: str) -> str:
        c = self.cells[run][metric]
        if run == self.baseline or c.p_adjusted >= self.alpha:
            return ""
        return "▲" if c.delta > 0 else "▼"

    def cell(self, run: str, metric: str) -> tuple[str, str]:
        """The one cell format of every rendering: ``mean [ci]`` and, off the baseline, ``delta p mark``."""
        c = self.cells[run][metric]
        first = f"{c.mean:.4f} [{c.ci[0]:.4f}, {c.ci[1]:.4f}]"
        if run == self.baseline:
            return first, ""
        return first, f"{c.delta:+.4f} p={c.p_adjusted:.3g}{self.marker(run, metric)}"

    def caption(self) -> str:
        test = "paired t-test" if self.test == "t" else "Fisher randomization test"
        corr = ", Holm-corrected over the runs" if len(self.cells) > 2 else ""
        return (
            f"{self.n_queries} queries. Mean [{100 * (1 - self.alpha):.0f} % bootstrap CI]; difference from the "
            f"baseline and its p-value ({test}{corr}); ▲/▼: significant at alpha = {self.alpha}."
        )

    def label(self, run: str) -> str:
        return run + (" (baseline)" if run == self.baseline else "")

    def markdown(self) -> str:
        lines = ["| run | " + " | ".join(self.metrics) + " |", "|---|" + "---:|" * len(self.metrics)]
        for run in self.cells:
            cells = [" ".join(filter(None, self.cell(run, m))) for m in self.metrics]
            lines.append(f"| {self.label(run)} | " + " | ".join(cells) + " |")
        return "\n".join([*lines, "", self.caption()])

    def to_dict(self) -> dict:
        return {n: {m: c.__dict__ for m, c in row.items()} for n, row in self.cells.items()}


def compare_runs(
    qrels: Mapping[str, Mapping[str, int]],
    runs: Mapping[str, Mapping[str, Mapping[str, float]]],
    *,
    baseline: str,
    metrics: Sequence[str] = DEFAULT_METRICS,
    test: str = "t",
    alpha: float = 0.05,
    resamples: int = 10_000,
    seed: int = 0,
) -> RunComparison:
    """Every run over the same judged queries (a query a run lacks would count 0 for it and fake a
    difference): runs covering different judged queries are refused, as the CLI refuses them;
    :func:`rankwise.data.runs.align_queries` compares over the common ones instead."""
    from rankwise.errors import RankwiseError

    if baseline not in runs:
        raise ValueError(f"baseline {baseline!r} is not among the runs {list(runs)}")
    if not qrels:
        raise RankwiseError("no judged queries: the qrels are empty")
    covered = {name: frozenset(q for q in run if q in qrels) for name, run in runs.items()}
    if len(set(covered.values())) > 1:
        counts = ", ".join(f"{name} covers {len(c)}" for name, c in covered.items())
        raise RankwiseError(
            f"the runs cover different judged queries ({counts} of {len(qrels)}); compare runs of the same "
            "split, or align them first (rankwise.data.runs.align_queries, the CLI's --common)"
        )
    per_query = {name: evaluate_arrays(qrels, run, metrics)[1] for name, run in runs.items()}
    cells: dict[str, dict[str, Comparison]] = {name: {} for name in runs}
    others = [n for n in runs if n != baseline]
    for m in metrics:
        base = per_query[baseline][m]
        cells[baseline][m] = Comparison(
            float(base.mean()), bootstrap_ci(base, alpha=alpha, resamples=resamples, seed=seed), 0.0, 1.0, 1.0
        )
        if others:
            res = compare_systems(
                base, {n: per_query[n][m] for n in others}, test=test, alpha=alpha, resamples=resamples, seed=seed
            )
            for n in others:
                cells[n][m] = res[n]
    return RunComparison(list(metrics), baseline, test, alpha, len(qrels), cells, per_query)

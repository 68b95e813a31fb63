"""Several systems on the same qrels: every metric per system with a bootstrap confidence interval,
and each system's difference from a baseline with a paired significance test, Holm-corrected over
every p-value of the table (see :mod:`rankwise.metrics.significance`).

A system is one run, or several runs (one per training seed): then intervals and p-values come
from the two-level bootstrap over queries and seeds together, so a difference that one lucky seed
made does not pass for a property of the recipe."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from rankwise.metrics.ranking import DEFAULT_METRICS, evaluate_arrays
from rankwise.metrics.significance import Comparison, bootstrap_ci, compare_systems, holm, two_level_bootstrap

Run = Mapping[str, Mapping[str, float]]


@dataclass
class RunComparison:
    metrics: list[str]
    baseline: str
    test: str
    alpha: float
    n_queries: int
    cells: dict[str, dict[str, Comparison]]  # run -> metric -> comparison (the baseline: delta 0, p 1)
    per_query: dict[str, dict[str, np.ndarray]]  # run -> metric -> [queries] (the mean over seeds)
    per_seed: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # run -> metric -> [seeds, queries]

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
        names = {"t": "paired t-test", "fisher": "Fisher randomization test"}
        test = names.get(self.test, "two-level bootstrap over queries and seeds")
        n_p = (len(self.cells) - 1) * len(self.metrics)
        corr = f", Holm-corrected over the table's {n_p} p-values" if n_p > 1 else ""
        seeds = sorted({len(v[self.metrics[0]]) for v in self.per_seed.values()}) if self.per_seed else [1]
        over = f" x {'/'.join(map(str, seeds))} seeds" if seeds != [1] else ""
        return (
            f"{self.n_queries} queries{over}. Mean [{100 * (1 - self.alpha):.0f} % bootstrap CI]; difference from "
            f"the baseline and its p-value ({test}{corr}); ▲/▼: significant at alpha = {self.alpha}."
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


def _seed_runs(system: Run | Sequence[Run]) -> list[Run]:
    """A system's runs: one run (a mapping) or a sequence of them, one per seed."""
    return [system] if isinstance(system, Mapping) else list(system)


def _check_coverage(qrels: Mapping[str, Mapping[str, int]], systems: dict[str, list[Run]]) -> None:
    from rankwise.errors import RankwiseError

    if not qrels:
        raise RankwiseError("no judged queries: the qrels are empty")
    covered = {
        (name, i): frozenset(q for q in run if q in qrels) for name, rs in systems.items() for i, run in enumerate(rs)
    }
    if any(not rs for rs in systems.values()):
        raise RankwiseError(f"a system has no runs: {[n for n, rs in systems.items() if not rs]}")
    if len(set(covered.values())) > 1:
        counts = ", ".join(
            f"{n}{f' seed {i}' if len(systems[n]) > 1 else ''} covers {len(c)}" for (n, i), c in covered.items()
        )
        raise RankwiseError(
            f"the runs cover different judged queries ({counts} of {len(qrels)}); compare runs of the same "
            "split, or align them first (rankwise.data.runs.align_queries, the CLI's --common)"
        )


def compare_runs(
    qrels: Mapping[str, Mapping[str, int]],
    runs: Mapping[str, Run | Sequence[Run]],
    *,
    baseline: str,
    metrics: Sequence[str] = DEFAULT_METRICS,
    test: str | None = None,
    alpha: float = 0.05,
    resamples: int = 10_000,
    seed: int = 0,
) -> RunComparison:
    """Every system over the same judged queries (a query a run lacks would count 0 for it and fake a
    difference): runs covering different judged queries are refused, as the CLI refuses them;
    :func:`rankwise.data.runs.align_queries` compares over the common ones instead.

    ``runs[name]`` is one run or a list of runs, one per training seed. ``test``: ``t`` or ``fisher``
    (one run per system; ``t`` by default) or ``two-level`` (queries and seeds; the default when a
    system has several seeds). Holm's correction runs over every p-value of the table."""
    if baseline not in runs:
        raise ValueError(f"baseline {baseline!r} is not among the runs {list(runs)}")
    systems = {name: _seed_runs(r) for name, r in runs.items()}
    _check_coverage(qrels, systems)
    several = any(len(rs) > 1 for rs in systems.values())
    test = test or ("two-level" if several else "t")
    if several and test != "two-level":
        raise ValueError(f"test={test!r} sees one run per system; with several seeds per system use 'two-level'")
    per_seed = {
        name: {m: np.stack(v) for m, v in zip(metrics, zip(*(_values(qrels, r, metrics) for r in rs)))}
        for name, rs in systems.items()
    }
    if test == "two-level":
        cells = _two_level_cells(per_seed, baseline, metrics, alpha, resamples, seed)
    else:
        cells = _paired_cells(
            {n: {m: v[0] for m, v in d.items()} for n, d in per_seed.items()},
            baseline,
            metrics,
            test,
            alpha,
            resamples,
            seed,
        )
    _holm_over_table(cells, baseline)
    per_query = {n: {m: v.mean(axis=0) for m, v in d.items()} for n, d in per_seed.items()}
    return RunComparison(
        list(metrics), baseline, test, alpha, len(qrels), cells, per_query, per_seed if several else {}
    )


def _values(qrels, run: Run, metrics: Sequence[str]) -> list[np.ndarray]:
    per_query = evaluate_arrays(qrels, run, metrics)[1]
    return [per_query[m] for m in metrics]


def _paired_cells(per_query, baseline, metrics, test, alpha, resamples, seed) -> dict[str, dict[str, Comparison]]:
    cells: dict[str, dict[str, Comparison]] = {name: {} for name in per_query}
    others = [n for n in per_query if n != baseline]
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
    return cells


def _two_level_cells(per_seed, baseline, metrics, alpha, resamples, seed) -> dict[str, dict[str, Comparison]]:
    cells: dict[str, dict[str, Comparison]] = {name: {} for name in per_seed}
    for m in metrics:
        base = per_seed[baseline][m]
        for name, by_metric in per_seed.items():
            values = by_metric[m]
            mean, ci, _ = two_level_bootstrap(values, alpha=alpha, resamples=resamples, seed=seed)
            if name == baseline:
                cells[name][m] = Comparison(mean, ci, 0.0, 1.0, 1.0)
                continue
            delta, delta_ci, p = two_level_bootstrap(values, base, alpha=alpha, resamples=resamples, seed=seed)
            cells[name][m] = Comparison(mean, ci, delta, p, p, delta_ci)
    return cells


def _holm_over_table(cells: dict[str, dict[str, Comparison]], baseline: str) -> None:
    """Holm's adjustment over every (system, metric) p-value of the table, in place."""
    keys = [(n, m) for n, row in cells.items() if n != baseline for m in row]
    for (n, m), p in zip(
        keys, holm([cells[n][m].p for n, m in keys]) if len(keys) > 1 else [cells[n][m].p for n, m in keys]
    ):
        cells[n][m].p_adjusted = p

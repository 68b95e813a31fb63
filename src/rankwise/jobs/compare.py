"""``rankwise compare``: several runs on the same qrels, metrics with confidence intervals and
each run's difference from a baseline with a paired significance test."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rankwise.errors import ConfigError
from rankwise.metrics import DEFAULT_METRICS
from rankwise.metrics.compare import RunComparison


@dataclass
class CompareJob:
    comparison: RunComparison
    qrels: str  # where the judgements came from (and the queries compared over)
    written: Path | None  # the Markdown table, when asked for


def parse_metrics(text: str) -> list[str]:
    """``"ndcg@10,map"`` -> names, each checked (a clear error for an unknown one)."""
    from rankwise.metrics import parse_metric

    names = [m.strip() for m in text.split(",") if m.strip()]
    for m in names:
        parse_metric(m)
    return names


def _unique_names(loaded) -> None:
    seen: dict[str, int] = {}
    for r in loaded:  # two runs with the same folder name stay apart
        seen[r.name] = seen.get(r.name, 0) + 1
        if seen[r.name] > 1:
            r.name = f"{r.name}#{seen[r.name]}"


def _baseline(loaded, baseline: str | None) -> str:
    if baseline is None:
        return loaded[0].name
    match = [
        r.name
        for r in loaded
        if r.name == baseline or str(r.path) == baseline or (r.folder and str(r.folder) == baseline.rstrip("/"))
    ]
    if not match:
        raise ConfigError(
            f"baseline={baseline}: not one of the runs given: {', '.join(r.name for r in loaded)}", param="baseline"
        )
    return match[0]


def _expand(runs: list[str | Path], lenient: bool) -> tuple[list, list[tuple[str | None, list[int]]]]:
    """Load every run; ``NAME=RUN,RUN,...`` is one system with a run per training seed. Returns the
    loaded runs and the systems in the order given: (name, positions of its runs); name None for a
    single run (named after its file once names are made unique)."""
    from rankwise.data.runs import load_run

    loaded, systems = [], []
    for spec in runs:
        text = str(spec)
        if "=" in text and not Path(text).exists():
            name, _, paths = text.partition("=")
            if not name or not paths:
                raise ConfigError(f"{text}: a system with seeds is NAME=RUN,RUN,...", param="runs")
            systems.append((name, list(range(len(loaded), len(loaded) + len(paths.split(","))))))
            loaded += [load_run(p, lenient=lenient, name=f"{name}#seed{i}") for i, p in enumerate(paths.split(","))]
        else:
            systems.append((None, [len(loaded)]))
            loaded.append(load_run(spec, lenient=lenient))
    return loaded, systems


def compare(
    runs: list[str | Path],
    *,
    baseline: str | None = None,
    qrels: Path | None = None,
    data: Path | None = None,
    split: str | None = None,
    metrics: list[str] | None = None,
    test: str | None = None,
    alpha: float = 0.05,
    resamples: int = 10_000,
    seed: int = 0,
    out: Path | None = None,
    lenient: bool = False,
    common: bool = False,
) -> CompareJob:
    """Compare run folders or TREC files; ``NAME=RUN,RUN,...`` is one system with a run per training
    seed (compared by the two-level bootstrap over queries and seeds); ``out``: also write the table
    as Markdown (and .json)."""
    from rankwise.data.runs import align_queries, check_queries, resolve_qrels
    from rankwise.io import check_writable, write_json, write_text
    from rankwise.metrics.compare import compare_runs
    from rankwise.metrics.significance import TESTS

    if test is not None and test not in TESTS:
        raise ConfigError(f"test={test}: choose one of {', '.join(TESTS)}", param="test")
    if out is not None:
        check_writable(out, is_dir=False)
    loaded, systems = _expand(runs, lenient)
    seeded = [name for name, _ in systems if name is not None]
    test = test or ("two-level" if seeded else "t")
    if seeded and test != "two-level":
        raise ConfigError(f"test={test}: systems with several seeds are compared with test=two-level", param="test")
    _unique_names(loaded)
    judgements, source = resolve_qrels(loaded, qrels=qrels, data=data, split=split)
    loaded = [check_queries(r, judgements, lenient=lenient) for r in loaded]
    judgements, note = align_queries(loaded, judgements, common=common)
    source = f"{source}, {note}" if note else source
    by_name = {
        name or loaded[idx[0]].name: [loaded[i].run for i in idx] if name else loaded[idx[0]].run
        for name, idx in systems
    }
    singles = [loaded[idx[0]] for name, idx in systems if name is None]
    base = baseline if baseline in seeded else _baseline(singles, baseline) if baseline else next(iter(by_name))
    res = compare_runs(
        judgements,
        by_name,
        baseline=base,
        metrics=metrics or list(DEFAULT_METRICS),
        test=test,
        alpha=alpha,
        resamples=resamples,
        seed=seed,
    )
    if out is not None:
        write_text(out, res.markdown() + "\n")
        meta = {"qrels": source, "baseline": base, "test": test, "alpha": alpha, "queries": res.n_queries}
        write_json(out.with_suffix(".json"), meta | {"runs": res.to_dict()})
    return CompareJob(res, source, out)

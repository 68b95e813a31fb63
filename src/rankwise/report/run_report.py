"""``rankwise report RUN_DIR``: the full report of one run, as ``report.md`` and ``report.html``.

Sections: metrics with bootstrap intervals (and the difference from a baseline with its
significance), score-quality diagnostics (per-query and global AUC, OPIS, calibration, rank
correlation with the graded labels), ROC curves, positive vs negative score histograms, the
metrics over training steps when the run trained with periodic evaluation, per-query deltas
against the baseline, and the worst queries with their top results.

The baseline is ``--baseline`` when given, else the run folder's ``run-before.trec`` (the
model before fine-tuning, which ``rankwise demo`` and ``rankwise train --eval-split`` write).
"""

from __future__ import annotations

import json
import logging
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rankwise.data.runs import LoadedRun, check_queries, load_run, resolve_qrels
from rankwise.data.trec import Qrels, read_run
from rankwise.errors import RankwiseError
from rankwise.metrics.auc import auc, per_query_auc, pooled_scores, roc_curve
from rankwise.metrics.calibration import calibration
from rankwise.metrics.compare import compare_runs
from rankwise.metrics.correlation import label_correlation
from rankwise.metrics.ranking import rank
from rankwise.metrics.threshold import opis
from rankwise.report.document import Document, Figure, Heading, Paragraph, TableBlock
from rankwise.report.plots import (
    diagnostics_over_steps,
    metric_over_steps,
    per_query_delta,
    roc_curves,
    score_histograms,
)

log = logging.getLogger(__name__)

REPORT_METRICS = ("ndcg@10", "mrr@10", "recall@100", "map", "rprec", "success@10", "judged@10")
EVAL_HISTORY = "eval_history.json"


@dataclass
class Diagnostics:
    per_query_auc: float
    global_auc: float
    opis: float
    ece_raw: float
    ece_platt: float
    kendall_tau: float
    spearman_rho: float

    def row(self) -> list[str]:
        """Each value, or why there is none (a nan in a report explains nothing)."""
        why = {
            "per_query_auc": "n/a: no query has both a positive and a negative",
            "global_auc": "n/a: no positive or no negative retrieved",
            "opis": "n/a: no threshold range with both kinds",
            "ece_raw": "n/a: no positive or no negative retrieved",
            "ece_platt": "n/a: no positive or no negative retrieved",
            "kendall_tau": "n/a: no query has two retrieved judged documents of different grades",
            "spearman_rho": "n/a: no query has two retrieved judged documents of different grades",
        }
        return [f"{v:.4f}" if np.isfinite(v) else why[k] for k, v in self.__dict__.items()]


def diagnostics(qrels: Qrels, run: dict) -> tuple[Diagnostics, tuple[np.ndarray, np.ndarray]]:
    pos, neg = pooled_scores(qrels, run)
    pq = per_query_auc(qrels, run)
    cal = calibration(pos, neg) if len(pos) and len(neg) else None
    corr = label_correlation(qrels, run)
    return Diagnostics(
        float(np.mean(list(pq.values()))) if pq else float("nan"),
        auc(pos, neg),
        opis(qrels, run),
        cal.ece_raw if cal else float("nan"),
        cal.ece_platt if cal else float("nan"),
        corr.kendall_tau,
        corr.spearman_rho,
    ), (pos, neg)


def _load_texts(loaded: LoadedRun) -> tuple[dict[str, str], dict[str, str]]:
    """Query texts and document snippets when the run folder names a readable dataset."""
    if loaded.data is None or not Path(loaded.data).is_dir():
        return {}, {}
    from rankwise.data.beir import load_corpus, load_queries
    from rankwise.data.jsonl import find_file

    try:
        queries = load_queries(find_file(Path(loaded.data), "queries.jsonl"))
        corpus = load_corpus(find_file(Path(loaded.data), "corpus.jsonl"))
    except RankwiseError as exc:  # the report still works without texts
        log.warning("no query/document texts in the report: %s", exc)
        return {}, {}
    return queries, {d: doc.full_text for d, doc in corpus.items()}


def _diagnostics(run_dir: Path) -> dict[str, tuple[list[int], list[float]]]:
    """``diag_*`` entries of the training history (``history.json``), by name."""
    path = run_dir / "history.json"
    if not path.is_file():
        return {}
    series: dict[str, tuple[list[int], list[float]]] = {}
    for h in json.loads(path.read_text(encoding="utf-8")):
        for k, v in (h.get("extra") or {}).items():
            if k.startswith("diag_"):
                steps, values = series.setdefault(k[len("diag_") :], ([], []))
                steps.append(h["step"])
                values.append(v)
    return series


def _snippet(text: str, n: int = 110) -> str:
    """One line of at most ``n`` characters; control characters shown escaped (``\\x1b``), never raw."""
    text = " ".join(text.split())
    text = "".join(f"\\x{ord(c):02x}" if unicodedata.category(c) == "Cc" else c for c in text)
    return text if len(text) <= n else text[: n - 1] + "…"


def build_report(
    run_dir: str | Path,
    *,
    baseline: str | Path | None = None,
    others: list[str | Path] = (),
    summary: str | None = None,
    qrels: Path | None = None,
    data: Path | None = None,
    split: str | None = None,
    lenient: bool = False,
    worst: int = 10,
    top: int = 5,
    seed: int = 0,
) -> tuple[Path, Path]:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RankwiseError(f"{run_dir}: not a run folder")
    loaded = load_run(run_dir, lenient=lenient)
    judgements, source = resolve_qrels([loaded], qrels=qrels, data=data, split=split)
    check_queries(loaded, judgements, lenient=lenient)
    base: LoadedRun | None = None
    if baseline is not None:
        base = check_queries(load_run(baseline, lenient=lenient), judgements, lenient=lenient)
    elif (run_dir / "run-before.trec").is_file():
        base = LoadedRun("before", run_dir / "run-before.trec", read_run(run_dir / "run-before.trec", lenient=lenient))
        check_queries(base, judgements, lenient=lenient)
    name = loaded.name if base is None or base.name != loaded.name else f"{loaded.name} (this run)"
    runs = {name: loaded.run} | ({base.name: base.run} if base else {})
    for other in others:  # more runs to show beside (e.g. BM25 in the demo)
        o = check_queries(load_run(other, lenient=lenient), judgements, lenient=lenient)
        runs[o.name if o.name not in runs else str(o.path)] = o.run

    doc = Document(f"rankwise report: {loaded.name}")
    if summary:
        doc.add(Paragraph(summary))
    doc.add(
        Paragraph(
            f"Run {loaded.path.name} scored against {source}: {len(judgements)} judged queries. "
            "Metrics as trec_eval computes them (ties by docid); intervals are 95 % bootstrap intervals over queries."
        )
    )

    cmp = compare_runs(judgements, runs, baseline=base.name if base else name, metrics=list(REPORT_METRICS), seed=seed)
    _metrics_section(doc, cmp, base, runs)
    figures = _quality_section(doc, judgements, runs, run_dir)
    figures += _training_figures(run_dir)
    if base:
        after = dict(zip(judgements, cmp.per_query[name]["ndcg@10"].tolist()))
        before = dict(zip(judgements, cmp.per_query[base.name]["ndcg@10"].tolist()))
        per_query_delta(before, after, run_dir / "per_query_ndcg10.png", metric=f"nDCG@10 vs {base.name}")
        figures.append((f"Per-query nDCG@10 change against {base.name}", "per_query_ndcg10.png"))
    doc.add(Heading("Figures"))
    for caption, file in figures:
        doc.add(Figure(caption, file))

    _worst_section(doc, loaded, judgements, cmp.per_query[name]["ndcg@10"], worst, top)
    return doc.write(run_dir)


def _metrics_section(doc: Document, cmp, base, runs) -> None:
    """Metrics with intervals and significance against the baseline."""
    doc.add(Heading("Metrics"))

    def text(run: str, metric: str) -> str:  # the comparison's one cell format; deltas only against a baseline
        first, second = cmp.cell(run, metric)
        return f"{first} {second}".strip() if base else first

    rows = [[run, *(text(run, m) for m in REPORT_METRICS)] for run in cmp.cells]
    doc.add(TableBlock(["run", *REPORT_METRICS], rows))
    if base:
        corr = ", Holm-corrected over the runs compared" if len(runs) > 2 else ""
        doc.add(Paragraph(f"Differences are against {cmp.baseline} (paired t-test{corr}); ▲/▼ mark p < {cmp.alpha}."))


def _quality_section(doc: Document, judgements, runs, run_dir: Path) -> list[tuple[str, str]]:
    """Score quality per run (AUC, OPIS, calibration, rank correlation), ROC and histograms."""
    diag, samples, curves = {}, {}, {}
    for run_name, run in runs.items():
        d, (pos, neg) = diagnostics(judgements, run)
        diag[run_name], samples[run_name] = d, (pos, neg)
        if len(pos) and len(neg):
            fpr, tpr, _ = roc_curve(pos, neg)
            curves[run_name] = (fpr, tpr, d.global_auc)
    doc.add(Heading("Score quality"))
    doc.add(
        TableBlock(
            ["run", "per-query AUC", "global AUC", "OPIS", "ECE sigmoid(s)", "ECE Platt", "Kendall τ-b", "Spearman ρ"],
            [[n, *d.row()] for n, d in diag.items()],
        )
    )
    doc.add(
        Paragraph(
            "AUC over each query's retrieved documents (unjudged count as negatives). OPIS: spread of per-query "
            "utility across thresholds where the global false-accept rate is 1-10 % (lower: one threshold suits all "
            "queries). ECE of sigmoid(score) as is, and after a Platt fit on these scores. τ/ρ: per-query rank "
            "correlation of scores with graded labels over retrieved judged documents."
        )
    )
    figures: list[tuple[str, str]] = []
    if curves:
        roc_curves(curves, run_dir / "roc.png")
        figures.append(("ROC curves (all queries pooled)", "roc.png"))
        score_histograms({n: samples[n] for n in curves}, run_dir / "score_histograms.png")
        figures.append(("Positive vs negative scores", "score_histograms.png"))

    return figures


def _training_figures(run_dir: Path) -> list[tuple[str, str]]:
    """Metrics over steps, the loss curve and the training diagnostics, when the folder has them."""
    figures: list[tuple[str, str]] = []
    hist_path = run_dir / EVAL_HISTORY
    if hist_path.is_file():
        hist = json.loads(hist_path.read_text(encoding="utf-8"))
        if hist:
            series = {m: [h["metrics"][m] for h in hist] for m in hist[0]["metrics"]}
            metric_over_steps([h["step"] for h in hist], series, run_dir / "metrics_over_steps.png")
            figures.append(("Metrics over training steps", "metrics_over_steps.png"))
    if (run_dir / "loss.png").is_file():
        figures.append(("Training loss", "loss.png"))
    diag_series = _diagnostics(run_dir)
    if diag_series:
        diagnostics_over_steps(diag_series, run_dir / "training_diagnostics.png")
        figures.append(
            (
                "Training diagnostics: hard negatives' mean rank and score margin under the model being trained, "
                "estimated false-negative rate among them, and how the gradient spreads over the batch's queries "
                "(largest share; effective number of queries)",
                "training_diagnostics.png",
            )
        )
    return figures


def _worst_section(doc: Document, loaded, judgements, values, worst: int, top: int) -> None:
    queries, texts = _load_texts(loaded)
    qids = list(judgements)
    order = sorted(range(len(values)), key=lambda i: (values[i], qids[i]))[:worst]
    doc.add(Heading(f"The {len(order)} worst queries by nDCG@10"))
    rows = []
    for i in order:
        qid = qids[i]
        ranked = rank(loaded.run.get(qid, {}))[:top]
        results = "; ".join(
            f"{r + 1}. {d} (grade {judgements[qid].get(d, '-')}, {loaded.run[qid][d]:.3f})"
            + (f": {_snippet(texts[d], 60)}" if d in texts else "")
            for r, d in enumerate(ranked)
        )
        relevant = ", ".join(d for d, g in judgements[qid].items() if g >= 1) or "none"
        rows.append(
            [
                qid,
                _snippet(queries.get(qid, "")),
                f"{values[i]:.3f}",
                results or "(nothing retrieved)",
                _snippet(relevant, 80),
            ]
        )
    doc.add(TableBlock(["query", "text", "nDCG@10", f"top {top} (grade, score)", "relevant"], rows, align_right=False))

"""Evaluation of a model on a dataset split: retrieve, then score the run as trec_eval does."""

from __future__ import annotations

from dataclasses import dataclass

from rankwise.data.beir import Dataset
from rankwise.metrics.ranking import DEFAULT_METRICS, evaluate, evaluate_per_query


@dataclass
class EvalResult:
    metrics: dict[str, float]  # mean over the judged queries, as trec_eval averages
    per_query: dict[str, dict[str, float]]  # metric -> {query id: value}
    run: dict[str, dict[str, float]]  # the retrieved run: {query id: {doc id: score}}


def score_run(dataset: Dataset, run: dict[str, dict[str, float]], metrics: list[str] | None = None) -> EvalResult:
    """Metrics of ``run`` against the split's qrels, with per-query values."""
    metrics = list(metrics or DEFAULT_METRICS)
    per_query = evaluate_per_query(dataset.qrels, run, metrics)
    return EvalResult(evaluate(dataset.qrels, run, metrics), per_query, run)


def evaluate_lists(model, data, metrics: list[str] | None = None) -> EvalResult:
    """A feature scorer on LETOR lists (:class:`~rankwise.data.letor.LetorData`): every row scored,
    metrics over the queries with at least one relevant row (a query without one has no ideal
    ranking to compare with; LETOR's own evaluation and LightGBM differ on it, so it is left out)."""
    metrics = list(metrics or ["ndcg@5", "ndcg@10", "map"])
    qrels = {q: d for q, d in data.qrels().items() if max(d.values()) > 0}
    run = data.run(model.predict(data.features, data.offsets))
    per_query = evaluate_per_query(qrels, run, metrics)
    return EvalResult(evaluate(qrels, run, metrics), per_query, run)


def evaluate_model(
    model,
    dataset: Dataset,
    k: int = 100,
    *,
    metrics: list[str] | None = None,
    show_progress: bool = False,
    cache: bool = False,
    embeddings=None,
) -> EvalResult:
    """Retrieve the top ``k`` of the split's corpus for each judged query with ``model`` and score
    the run. ``model``: a :class:`~rankwise.models.BiEncoder`, ``"bm25"``, a
    :class:`~rankwise.index.rerank.Pipeline` (its depth is the run's), or a
    :class:`~rankwise.models.CrossEncoder` (it reranks BM25's top ``k``); with LETOR lists as
    ``dataset``, a feature scorer (see :func:`evaluate_lists`). ``cache``: reuse corpus
    embeddings of the same model weights, settings and texts from an earlier call (kept on disk);
    ``embeddings``: the corpus rows, already encoded (e.g. by Ray into an on-disk store)."""
    from rankwise.data.letor import LetorData
    from rankwise.index.rerank import BM25Stage, CrossEncoderStage, Pipeline
    from rankwise.index.retrieve import bm25_run, dense_run
    from rankwise.models import CrossEncoder

    if isinstance(dataset, LetorData):
        return evaluate_lists(model, dataset, metrics)
    if isinstance(model, CrossEncoder):
        model = Pipeline(BM25Stage(), CrossEncoderStage(model), depth=k)
    if isinstance(model, Pipeline):
        run = model.run(dataset, show_progress=show_progress).run
    elif isinstance(model, str) and model == "bm25":
        run = bm25_run(dataset, k, show_progress=show_progress)
    else:
        run = dense_run(model, dataset, k, show_progress=show_progress, cache=cache, embeddings=embeddings)
    return score_run(dataset, run, metrics)

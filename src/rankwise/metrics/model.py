"""Evaluation of a model on a dataset split: retrieve, then score the run as trec_eval does."""

from __future__ import annotations

from dataclasses import dataclass

from rankwise.data.beir import Dataset
from rankwise.errors import ConfigError
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
    the run. ``model``: a model of any registered family (a
    :class:`~rankwise.models.BiEncoder` retrieves; a :class:`~rankwise.models.CrossEncoder`
    reranks BM25's top ``k``; a feature scorer scores LETOR lists given as ``dataset``),
    ``"bm25"``, or anything with ``search(dataset, k, ...)`` such as a
    :class:`~rankwise.index.rerank.Pipeline` (its own depth is the run's). ``cache``: reuse
    corpus embeddings of the same model weights, settings and texts from an earlier call (kept on
    disk); ``embeddings``: the corpus rows, already encoded (e.g. by Ray into an on-disk store)."""
    from rankwise.families import find_family
    from rankwise.index.retrieve import bm25_run

    family = find_family(model)
    if family is not None:
        kw = {"show_progress": show_progress, "cache": cache, "embeddings": embeddings}
        return family.evaluate(dataset, k, metrics=metrics, **kw)
    if isinstance(model, str) and model == "bm25":
        return score_run(dataset, bm25_run(dataset, k, show_progress=show_progress), metrics)
    if callable(getattr(model, "search", None)):
        return score_run(dataset, model.search(dataset, k, show_progress=show_progress), metrics)
    raise ConfigError(
        f"evaluate_model: cannot search with a {type(model).__name__}: give a model, 'bm25' or a Pipeline"
    )

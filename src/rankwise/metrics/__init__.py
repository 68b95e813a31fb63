"""Metrics equal to trec_eval: nDCG@k, MRR@k, Recall@k, P@k, MAP."""

from rankwise.metrics.ranking import DEFAULT_METRICS, evaluate, evaluate_per_query, parse_metric, rank

__all__ = ["DEFAULT_METRICS", "evaluate", "evaluate_per_query", "parse_metric", "rank"]

"""Reports: markdown with figures for run folders."""

from rankwise.report.markdown import metrics_table, write_report
from rankwise.report.plots import per_query_delta, training_loss

__all__ = ["metrics_table", "write_report", "per_query_delta", "training_loss"]

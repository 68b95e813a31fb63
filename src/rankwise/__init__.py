"""rankwise: train and evaluate neural retrievers and rankers with ranking-aligned objectives."""

__version__ = "0.1.0"

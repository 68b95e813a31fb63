"""Negative mining and batch strategies (see the negatives issue)."""

"""The monitoring store: see base.py for the interface."""

from monitoring.store.base import Line, LogPage, LogQuery, Point, Sample, Store

__all__ = ["Line", "LogPage", "LogQuery", "Point", "Sample", "Store"]

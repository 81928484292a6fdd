"""The monitoring store: see base.py for the interface.

`get_store()` is the one way in: Elasticsearch when `ELASTICSEARCH_URL` names a cluster,
else the platform's database. The store is built once per process and kept; the
Elasticsearch client inside it is made on first use.
"""

from __future__ import annotations

import functools

from django.conf import settings

from monitoring.store.base import Line, LogPage, LogQuery, Point, Sample, Store

__all__ = ["Line", "LogPage", "LogQuery", "Point", "Sample", "Store", "get_store"]


@functools.cache
def get_store() -> Store:
    url: str = settings.ELASTICSEARCH_URL
    if url:
        from monitoring.store.elastic import ElasticStore

        return ElasticStore(url)
    from monitoring.store.database import DatabaseStore

    return DatabaseStore()

"""The container's search backend: SQL, or Elasticsearch (falling back to SQL while the
cluster is unreachable) when ``QUANGUARD_ES_URL`` is set."""

from __future__ import annotations

from typing import TYPE_CHECKING

from monitor.search import SearchBackend
from monitor.sql_search import SqlSearchBackend

if TYPE_CHECKING:
    from quanguard.container import Container

__all__ = ["build_search"]


def build_search(container: Container) -> SearchBackend:
    sql = SqlSearchBackend(container.session)
    if not container.settings.es_url:
        return sql
    from quanguard.services.shipper import FallbackSearch, get_es

    service = get_es(container)
    assert service is not None
    return FallbackSearch(service.backend, sql)

"""The service's Elasticsearch wiring: startup check, shipping thread, status, metrics."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

from monitor.es import EsIncompatible, EsUnavailable
from monitor.search import SearchQuery, SearchResult
from monitor.store import AuditStore, create_schema
from quanguard.container import Container, build_container
from quanguard.services.shipper import FallbackSearch, es_status, get_es, start_es
from tests.conftest import make_settings
from tests.es_fixture import EsServer, make_events
from tests.serving import free_port

pytestmark = pytest.mark.es


def _container(tmp_path: Path, es_url: str | None) -> Container:
    c = build_container(make_settings(tmp_path, es_url=es_url))
    create_schema(c.engine)  # a no-op once migration 0002 created the tables
    return c


@pytest.fixture
def es_container(tmp_path: Path, es_server: EsServer, es_prefix: str) -> Iterator[Container]:
    c = _container(tmp_path, es_server.url)
    service = get_es(c)
    assert service is not None
    service.prefix = service.sink.prefix = service.backend.prefix = es_prefix
    service.shipper.poll_interval = 0.05
    yield c
    c.close()


def _append(c: Container, n: int, seed: int = 1) -> None:
    events = [replace(e, seq=None, ingested=None) for e in make_events(n, seed=seed)]
    with c.session() as session, session.begin():
        AuditStore().append(session, events)


def _wait(cond: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError("timed out")


def test_startup_reports_cluster_and_ships_in_background(es_container: Container) -> None:
    _append(es_container, 120)
    service = start_es(es_container)
    assert service is not None
    status: dict[str, Any] | None = es_status(es_container)
    assert status is not None
    assert status["cluster"]["version"].split(".")[0] == status["cluster"]["client_version"].split(".")[0]
    assert status["health"] in ("green", "yellow")
    assert status["retention"]["mode"] in ("ilm", "delete_by_query")
    _wait(lambda: service.shipper.status().lag == 0)
    _append(es_container, 30, seed=2)
    service.shipper.notify()
    _wait(lambda: service.shipper.status().lag == 0)
    service.sink.refresh()
    assert service.sink.count() == 150
    result = service.backend.search(SearchQuery(size=0))
    assert result.total == 150
    metrics = generate_latest(es_container.metrics.registry).decode()
    assert "quanguard_es_shipper_lag_events 0.0" in metrics


def test_cluster_of_another_major_is_refused_at_startup(es_container: Container,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import monitor.es

    monkeypatch.setattr(monitor.es, "client_major", lambda: 99)
    with pytest.raises(EsIncompatible, match="supports only 99.x"):
        start_es(es_container)
    service = get_es(es_container)
    assert service is not None and service.shipper.status().state != "shipping"


def test_unreachable_cluster_at_startup_is_not_fatal(tmp_path: Path) -> None:
    c = _container(tmp_path, f"http://127.0.0.1:{free_port()}")
    try:
        service = get_es(c)
        assert service is not None
        service.client = service.client.options(request_timeout=0.5)
        service.shipper.backoff = replace(service.shipper.backoff, base=0.05, cap=0.2)
        _append(c, 5)
        start_es(c)
        _wait(lambda: service.shipper.status().failures >= 1)
        status: dict[str, Any] | None = es_status(c)
        assert status is not None
        assert status["health"] == "unreachable" and status["check_error"]
        assert status["shipper"]["lag"] == 5
    finally:
        c.close()


def test_without_es_url_there_is_no_es_service(tmp_path: Path) -> None:
    c = _container(tmp_path, None)
    try:
        assert get_es(c) is None and start_es(c) is None and es_status(c) is None
    finally:
        c.close()


def test_search_falls_back_to_sql_while_es_is_down() -> None:
    class Down:
        name = "elasticsearch"

        def search(self, query: SearchQuery) -> SearchResult:
            raise EsUnavailable("Elasticsearch unreachable while searching")

    class Sql:
        name = "sql"

        def search(self, query: SearchQuery) -> SearchResult:
            return SearchResult(total=3, hits=())

    backend = FallbackSearch(Down(), Sql())
    assert backend.search(SearchQuery()).total == 3
    assert backend.last_backend == "sql"


def test_preflight_refuses_a_mismatch_and_tolerates_an_outage(
        es_container: Container, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from quanguard.services.shipper import preflight_es

    info = preflight_es(es_container)
    assert info is not None and info.health in ("green", "yellow")
    down = _container(tmp_path / "down", f"http://127.0.0.1:{free_port()}")
    try:
        assert preflight_es(down) is None
    finally:
        down.close()
    import monitor.es

    monkeypatch.setattr(monitor.es, "client_major", lambda: 7)
    service = get_es(es_container)
    assert service is not None
    service.mark_down()
    with pytest.raises(EsIncompatible):
        preflight_es(es_container)


def test_fallback_retention_runs_in_the_background(es_container: Container) -> None:
    from datetime import UTC, datetime, timedelta

    service = get_es(es_container)
    assert service is not None
    service.retention_interval = 0.1
    old = [replace(e, seq=None, ingested=None,
                   ts=datetime.now(UTC) - timedelta(days=400 + i)) for i, e in
           enumerate(make_events(5, seed=4))]
    recent = [replace(e, seq=None, ingested=None, ts=datetime.now(UTC) - timedelta(hours=i))
              for i, e in enumerate(make_events(3, seed=6))]
    with es_container.session() as session, session.begin():
        AuditStore().append(session, old + recent)
    start_es(es_container)
    _wait(lambda: service.shipper.status().lag == 0)
    assert service.retention is not None
    assert service.retention.cutoff < datetime.now(UTC) - timedelta(days=179)
    if service.retention.mode == "ilm":
        pytest.skip("ILM deletes on its own schedule; the fallback is tested on the stand-in")

    def pruned() -> bool:
        service.sink.refresh()
        return service.sink.count() == 3

    _wait(pruned)  # the old events' monthly indices are gone from the search copy
    with es_container.session() as session:
        assert AuditStore().count(session) == 8  # the SQL trail keeps them (its own purge rules)

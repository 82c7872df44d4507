"""Elasticsearch wiring of a running service: cluster check, template, shipper, search.

With ``QUANGUARD_ES_URL`` set, :func:`start_es` (called at service startup by
``quanguard.api.routes_console.on_startup``) checks the cluster (version and health are
logged and shown in ``/v1/audit/status``), installs the index template and the retention
policy, and runs the shipper on a background thread. A cluster of another major version
is refused at startup with a clear error; an unreachable cluster is not fatal: the SQL
store keeps every event and the shipper connects, checks and catches up once the cluster
answers.

The one service object lives on the container (``get_es(container)``), so the search
service, the status route and the console all see the same client and shipper.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from monitor.errors import MonitorError
from monitor.es import (
    DEFAULT_PREFIX,
    ClusterInfo,
    EsIncompatible,
    EsSink,
    EsUnavailable,
    WriteResult,
    check_cluster,
    make_client,
)
from monitor.es_search import EsSearchBackend
from monitor.events import AuditEvent
from monitor.retention_es import (
    MODE_FALLBACK,
    MODE_ILM,
    RetentionOutcome,
    apply_retention,
    install_ilm,
)
from monitor.search import SearchBackend, SearchQuery, SearchResult
from monitor.shipper import Backoff, Shipper, SqlSpool

if TYPE_CHECKING:
    from quanguard.container import Container

__all__ = [
    "EsService",
    "FallbackSearch",
    "es_status",
    "get_es",
    "preflight_es",
    "start_es",
    "stop_es",
]

_log = logging.getLogger("quanguard.es")
_ATTR = "_es_service"


class _CheckedSink:
    """The ES sink, preceded (once per connection) by the cluster check and the template.

    So a service that started while the cluster was down checks the version before its
    first write, and never writes to a cluster it would have refused.
    """

    def __init__(self, service: EsService) -> None:
        self.service = service

    def write(self, events: Sequence[AuditEvent]) -> WriteResult:
        self.service.ensure_ready()
        try:
            return self.service.sink.write(events)
        except EsUnavailable:
            self.service.mark_down()
            raise


class EsService:
    """Client, cluster info, sink, search backend and shipper of one service instance."""

    def __init__(self, container: Container, url: str, *, prefix: str = DEFAULT_PREFIX,
                 batch_size: int = 1000, backoff: Backoff | None = None,
                 poll_interval: float = 1.0, retention_interval: float = 6 * 3600) -> None:
        self.container = container
        self.url = url
        self.prefix = prefix
        self.client = make_client(url)
        self.sink = EsSink(self.client, prefix=prefix)
        self.backend = EsSearchBackend(self.client, prefix=prefix)
        self.info: ClusterInfo | None = None
        self.retention: RetentionOutcome | None = None
        self.last_check_error: str | None = None
        self._ready = False
        self._lock = threading.Lock()
        self.retention_interval = retention_interval
        self._stop_retention = threading.Event()
        self._retention_thread: threading.Thread | None = None
        self.shipper = Shipper(SqlSpool(container.session), _CheckedSink(self),
                               batch_size=batch_size, backoff=backoff or Backoff(),
                               poll_interval=poll_interval)

    def ensure_ready(self) -> ClusterInfo:
        """Check the cluster and install template + retention policy (once per connection).

        Raises EsIncompatible (wrong major) or EsUnavailable (unreachable).
        """
        with self._lock:
            if self._ready and self.info is not None:
                return self.info
            try:
                info = check_cluster(self.client, self.url)
            except MonitorError as exc:
                self.last_check_error = str(exc)
                raise
            days = int(self.container.settings.retention_days)
            policy = install_ilm(self.client, prefix=self.prefix, retention_days=days)
            self.sink.ilm_policy = policy
            self.sink.ensure_template()
            self.info, self._ready, self.last_check_error = info, True, None
            self.retention = RetentionOutcome(
                MODE_ILM if policy else MODE_FALLBACK, days,
                datetime.now(UTC) - timedelta(days=days),
                detail="ILM policy installed" if policy else "no ILM: deletes run periodically")
            _log.info("Elasticsearch at %s: cluster %r version %s, health %s (client %s); "
                      "retention by %s", self.url, info.name, info.version, info.health,
                      info.client_version, self.retention.mode)
            return info

    def mark_down(self) -> None:
        """After a failure, check the cluster again before the next write (it may be a new one)."""
        with self._lock:
            self._ready = False

    def enforce_retention(self, *, now: datetime | None = None) -> RetentionOutcome:
        """Apply retention now (ILM policy, or the delete fallback on clusters without ILM)."""
        self.ensure_ready()
        outcome = apply_retention(self.client, prefix=self.prefix,
                                  retention_days=int(self.container.settings.retention_days),
                                  now=now)
        self.retention = outcome
        return outcome

    def _retention_loop(self) -> None:
        # Clusters without ILM get the fallback deletes from here; with ILM this only
        # re-attaches the policy. Failures are logged and retried at the next round.
        while not self._stop_retention.wait(self.retention_interval):
            try:
                outcome = self.enforce_retention()
                _log.info("Elasticsearch retention (%s): %d indices, %d events deleted",
                          outcome.mode, len(outcome.deleted_indices),
                          outcome.deleted_documents)
            except Exception as exc:  # noqa: BLE001 - the loop must outlive any failure
                _log.warning("Elasticsearch retention failed, retrying later: %s", exc)

    def start(self) -> None:
        self.shipper.start()
        if self._retention_thread is None:
            self._stop_retention.clear()
            self._retention_thread = threading.Thread(
                target=self._retention_loop, name="es-retention", daemon=True)
            self._retention_thread.start()

    def stop(self) -> None:
        self._stop_retention.set()
        if self._retention_thread is not None:
            self._retention_thread.join(5)
            self._retention_thread = None
        self.shipper.stop()
        self.client.close()

    def status(self) -> dict[str, object]:
        """For ``/v1/audit/status`` and the console: cluster, shipper lag, retention."""
        health: str | None = None
        if self.info is not None:
            try:
                health = str(self.client.options(request_timeout=2).cluster.health().get("status"))
            except Exception:  # noqa: BLE001 - status answers while the cluster is down
                health = "unreachable"
        return {
            "url": self.url,
            "index_prefix": self.prefix,
            "cluster": self.info.as_dict() if self.info else None,
            "health": health or ("unreachable" if self.last_check_error else "unknown"),
            "check_error": self.last_check_error,
            "shipper": self.shipper.status().as_dict(),
            "retention": self.retention.as_dict() if self.retention else None,
        }


class FallbackSearch:
    """Search Elasticsearch; while it is unreachable, answer from the SQL store (the
    source of truth) instead of failing, and say so in ``last_backend``."""

    name = "elasticsearch"

    def __init__(self, primary: SearchBackend, fallback: SearchBackend) -> None:
        self.primary = primary
        self.fallback = fallback
        self.last_backend = primary.name

    def search(self, query: SearchQuery) -> SearchResult:
        try:
            result = self.primary.search(query)
            self.last_backend = self.primary.name
        except EsUnavailable as exc:
            _log.warning("Elasticsearch search failed, answering from SQL: %s", exc)
            result = self.fallback.search(query)
            self.last_backend = self.fallback.name
        return result


def get_es(container: Container) -> EsService | None:
    """The container's EsService (built on first use), or None without QUANGUARD_ES_URL."""
    url = container.settings.es_url
    if not url:
        return None

    def build() -> EsService:
        service = EsService(container, url)
        _register_metrics(container, service)
        container.on_close(service.stop)
        return service

    return container.shared(_ATTR, build)


def start_es(container: Container) -> EsService | None:
    """Service startup: check the cluster and start shipping. Refuses a mismatched cluster
    (EsIncompatible propagates); an unreachable one is retried in the background."""
    service = get_es(container)
    if service is None:
        return None
    try:
        service.ensure_ready()
    except EsIncompatible:
        raise
    except EsUnavailable as exc:
        _log.warning("Elasticsearch at %s is not reachable yet; events stay in the SQL "
                     "store and are shipped when it answers: %s", service.url, exc)
    service.start()
    return service


def preflight_es(container: Container) -> ClusterInfo | None:
    """For ``quanguard serve`` before the server starts: refuse a mismatched cluster with a
    one-line error (EsIncompatible, kind ``invalid``) instead of a failed-startup trace.
    An unreachable cluster is not an error here (the shipper waits for it)."""
    service = get_es(container)
    if service is None:
        return None
    try:
        return service.ensure_ready()
    except EsUnavailable:
        return None


def stop_es(container: Container) -> None:
    service = getattr(container, _ATTR, None)
    if service is not None:
        service._stop_retention.set()
        service.shipper.stop()


def es_status(container: Container) -> dict[str, object] | None:
    service = get_es(container)
    return service.status() if service is not None else None


def _register_metrics(container: Container, service: EsService) -> None:
    from prometheus_client import Gauge

    registry = container.metrics.registry
    Gauge("quanguard_es_shipper_lag_events", "Audit events committed but not yet in "
          "Elasticsearch", registry=registry).set_function(
        lambda: float(service.shipper.status().lag))
    Gauge("quanguard_es_shipper_failures", "Consecutive failed shipping attempts",
          registry=registry).set_function(lambda: float(service.shipper.status().failures))

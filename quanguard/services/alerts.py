"""The container's alert service: the alert book and the optional webhook.

New alerts (and collapsed repeats) are handed to ``notify`` after their transaction
commits; with ``QUANGUARD_ALERT_WEBHOOK_URL`` set, a background thread POSTs them as
JSON, retrying with exponential backoff (a webhook outage never blocks the trail).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from monitor.alert_engine import Alert, get_alert, list_alerts, transition

if TYPE_CHECKING:
    from quanguard.container import Container

__all__ = ["AlertService", "Webhook", "build_alerts"]

_log = logging.getLogger("quanguard.alerts")


class Webhook:
    """Delivers alerts to a URL: at most ``attempts`` tries per batch, backoff doubling."""

    def __init__(self, url: str, *, attempts: int = 5, base_delay: float = 0.5,
                 timeout: float = 5.0,
                 post: Callable[[str, object], int] | None = None) -> None:
        self.url = url
        self.attempts = attempts
        self.base_delay = base_delay
        self.timeout = timeout
        self._post = post or self._http_post
        self._queue: queue.Queue[list[dict[str, object]] | None] = queue.Queue(maxsize=1000)
        self._thread: threading.Thread | None = None
        self.delivered = 0
        self.failed = 0

    def _http_post(self, url: str, payload: object) -> int:
        import httpx  # the webhook's thread only: every command that appends loads this module

        return httpx.post(url, json=payload, timeout=self.timeout).status_code

    def send(self, alerts: Sequence[Alert]) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="alert-webhook", daemon=True)
            self._thread.start()
        try:
            self._queue.put_nowait([a.to_dict() for a in alerts])
        except queue.Full:
            self.failed += len(alerts)
            _log.error("alert webhook queue full; %d alerts not delivered", len(alerts))

    def deliver(self, payload: list[dict[str, object]]) -> bool:
        import httpx

        delay = self.base_delay
        for attempt in range(1, self.attempts + 1):
            try:
                status = self._post(self.url, {"alerts": payload})
                if 200 <= status < 300:
                    self.delivered += len(payload)
                    return True
                _log.warning("alert webhook answered %s (attempt %d)", status, attempt)
            except httpx.HTTPError as exc:
                _log.warning("alert webhook failed (attempt %d): %s", attempt, exc)
            if attempt < self.attempts:
                time.sleep(delay)
                delay *= 2
        self.failed += len(payload)
        return False

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            self.deliver(item)

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=5)


class AlertService:
    def __init__(self, container: Container) -> None:
        self.container = container
        url = container.settings.alert_webhook_url
        self.webhook = Webhook(url) if url else None
        if self.webhook is not None:
            container.on_close(self.webhook.stop)

    def list(self, session: Session, **filters: Any) -> list[Alert]:
        return list_alerts(session, **filters)

    def get(self, session: Session, alert_id: str) -> Alert:
        return get_alert(session, alert_id)

    def update(self, session: Session, alert_id: str, *, status: str,
               note: str | None) -> Alert:
        return transition(session, alert_id, status, note=note)

    def notify(self, alerts: Sequence[Alert]) -> None:
        if self.webhook is not None and alerts:
            self.webhook.send(alerts)


def build_alerts(container: Container) -> AlertService:
    return AlertService(container)

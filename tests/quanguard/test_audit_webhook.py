"""The alert webhook: retried with backoff, delivered after commit only."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import httpx

from monitor.alert_engine import Alert
from quanguard.services.alerts import Webhook

NOW = datetime(2026, 11, 26, tzinfo=UTC)
ALERT = Alert(id="a1", rule="denial-burst", severity="high", actor="u", window_start=NOW,
              window_end=NOW, seqs=(1, 2), count=1, summary="5 denied", status="open",
              note=None, created=NOW, updated=NOW)


def test_retries_until_delivered() -> None:
    calls: list[Any] = []

    def post(url: str, payload: Any) -> int:
        calls.append(payload)
        if len(calls) == 1:
            raise httpx.ConnectError("down")
        return 503 if len(calls) == 2 else 200

    hook = Webhook("http://127.0.0.1:9/hook", base_delay=0.001, post=post)
    assert hook.deliver([ALERT.to_dict()]) is True
    assert len(calls) == 3 and hook.delivered == 1
    assert calls[-1]["alerts"][0]["rule"] == "denial-burst"


def test_gives_up_after_attempts() -> None:
    hook = Webhook("http://127.0.0.1:9/hook", attempts=3, base_delay=0.001,
                   post=lambda url, payload: 500)
    assert hook.deliver([ALERT.to_dict()]) is False and hook.failed == 1


def test_background_send() -> None:
    got: list[Any] = []
    def post(url: str, payload: Any) -> int:
        got.append(payload)
        return 204

    hook = Webhook("http://x", post=post)
    hook.send([ALERT])
    deadline = time.time() + 5
    while not got and time.time() < deadline:
        time.sleep(0.01)
    hook.stop()
    assert got and got[0]["alerts"][0]["id"] == "a1"


def test_notified_after_commit_only(container: Any) -> None:
    from monitor.events import EventDecision
    from quanguard.auth import Principal

    sent: list[Any] = []
    container.alerts.notify = lambda alerts: sent.extend(alerts)
    container.audit.set_redactor(None)
    p = Principal(id="prober", name="prober", role="consumer", org="o")
    try:
        with container.session() as s, s.begin():
            for _ in range(5):
                container.audit.record(s, actor=p, action="query", decision=EventDecision("deny"))
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass
    assert sent == []
    with container.session() as s, s.begin():
        for _ in range(5):
            container.audit.record(s, actor=p, action="query", decision=EventDecision("deny"))
        assert sent == []
    assert sent and sent[-1].rule == "denial-burst"

"""pytest plugin: an Elasticsearch-compatible server for the ``es`` tests.

By default it starts the stand-in server that the PyPI package ``noida-db`` ships (its
binary speaks the Elasticsearch REST API) on a free port with a temporary data folder,
once per test session, and stops it at the end. With ``QUANGUARD_TEST_ES_URL`` set the
tests run against that cluster instead (a real one); tests that stop and restart the
server mid-stream are skipped there, because we do not own that cluster's process.

Fixtures:

* ``es_server`` (session): an :class:`EsServer` — ``.url``, ``.stop()``, ``.start()``,
  ``.restartable``.
* ``es_prefix``: a unique index prefix for one test; its indices and template are removed
  afterwards, so tests never see each other's documents.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from monitor.events import Actor, AuditEvent, EventDecision
from monitor.search import Bucket, SearchQuery, SearchResult, order_terms
from tests.serving import free_port

_START_TIMEOUT = 20.0


def _noida_binary() -> Path | None:
    try:
        path = Path(str(files("noida_db").joinpath("noida-db")))
    except ModuleNotFoundError:
        return None
    if not path.is_file():
        return None
    if not os.access(path, os.X_OK):
        path.chmod(0o755)
    return path


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_cluster/health", timeout=1.0) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class EsServer:
    """One Elasticsearch-compatible server the tests talk to."""

    def __init__(self, url: str, *, binary: Path | None = None, data_dir: Path | None = None,
                 port: int | None = None) -> None:
        self.url = url
        self._binary = binary
        self._data_dir = data_dir
        self._port = port
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Path | None = data_dir / "server.log" if data_dir else None

    @property
    def restartable(self) -> bool:
        """Only a server this fixture started can be stopped and restarted."""
        return self._binary is not None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the stand-in (same port, same data folder) and wait until it is healthy."""
        if not self.restartable:
            raise RuntimeError("this cluster was not started by the fixture")
        if self.running:
            return
        assert self._binary and self._data_dir and self._log and self._port
        log = self._log.open("ab")
        self._proc = subprocess.Popen(
            [str(self._binary), "start", "--data-dir", str(self._data_dir / "data"),
             "--only", "elasticsearch", "--elasticsearch-port", str(self._port)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"noida-db exited with {self._proc.returncode}: {self.log_tail()}")
            if _healthy(self.url):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"noida-db did not become healthy in {_START_TIMEOUT}s: {self.log_tail()}")

    def stop(self) -> None:
        """Stop the server as an outage would (SIGTERM, then SIGKILL); its data stays.

        Only what the stand-in acknowledged before the SIGTERM stays: for a few tens of
        milliseconds after it, noida-db still answers requests and acknowledges bulk writes
        that it then does not keep (Elasticsearch fsyncs its translog before it
        acknowledges). A test that writes while it stops the server waits for its request
        in flight to be answered and sends the next only after this returns.
        """
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        # Wait until the port really refuses connections.
        deadline = time.monotonic() + 5
        while _healthy(self.url) and time.monotonic() < deadline:
            time.sleep(0.05)

    def log_tail(self) -> str:
        if self._log is None or not self._log.exists():
            return ""
        return self._log.read_text(errors="replace")[-2000:]


@pytest.fixture(scope="session")
def es_server() -> Iterator[EsServer]:
    external = os.environ.get("QUANGUARD_TEST_ES_URL")
    if external:
        if not _healthy(external.rstrip("/")):
            pytest.fail(f"QUANGUARD_TEST_ES_URL={external} does not answer /_cluster/health")
        yield EsServer(external.rstrip("/"))
        return
    binary = _noida_binary()
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("noida-db is not installed (pip install -e '.[dev]')")
        pytest.skip("noida-db is not installed")
    tmp = Path(tempfile.mkdtemp(prefix="qg-es-"))
    port = free_port()
    server = EsServer(f"http://127.0.0.1:{port}", binary=binary, data_dir=tmp, port=port)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def es_prefix(es_server: EsServer) -> Iterator[str]:
    prefix = f"qgtest-{uuid.uuid4().hex[:10]}"
    yield prefix
    if not es_server.running and es_server.restartable:
        es_server.start()
    from elasticsearch import Elasticsearch

    client = Elasticsearch(es_server.url, request_timeout=10)
    try:
        names = list(client.indices.get(index=f"{prefix}-*", allow_no_indices=True,
                                        ignore_unavailable=True).keys())
        for name in names:  # real clusters refuse wildcard deletes (destructive_requires_name)
            client.indices.delete(index=name, ignore_unavailable=True)
        if client.indices.exists_index_template(name=prefix):
            client.indices.delete_index_template(name=prefix)
    finally:
        client.close()


# --- generated events and the reference reading of the search semantics -----------
# reference_search is written straight from monitor.search's docstring, independently of
# both backends; the parity tests hold the SQL and Elasticsearch backends to it and to
# each other.

ACTORS = [Actor(f"u{i}", role, org, name) for i, (role, org, name) in enumerate([
    ("consumer", "市人社局", "Social-Insurance-App"), ("provider", "市卫健委", "卫健委数据源"),
    ("manager", "市大数据局", None), ("consumer", "市公安局", "gongan-query"),
    ("auditor", "市大数据局", "Audit-Team"), ("consumer", "市人社局", None)])]
SOURCE_IPS = ["10.0.0.1", "10.0.3.17", "10.1.2.3", "192.168.1.20", "172.16.5.4",
              "2001:db8::7", None]
ACTIONS = ["read_masked", "export", "aggregate", "psi", "query", "download"]
DATASETS = ["社保缴纳", "户籍人口", "医疗机构", None]
GRADES = ["L1", "L2", "L3", "L4", None]
PURPOSES = ["统计分析 Monthly report", "导出 export for audit", "核查 PSI match",
            "Annual REPORT 年报", None, "资格审核 qualification check"]
REASONS = ["rule allow-l2", "denied: grade too high", None, "审批通过 approved"]
START = datetime(2026, 3, 1, 15, 30, tzinfo=UTC)


def make_events(n: int, *, seed: int = 7, start: datetime = START) -> list[AuditEvent]:
    """``n`` events with seq 1..n over ~10 days, several within the same millisecond."""
    rng = random.Random(seed)
    events = []
    ts = start
    for seq in range(1, n + 1):
        step = rng.choice([0, 0.0003, 0.7, 61, 3600 * 3, 3600 * 7])  # duplicates, sub-ms, hours
        ts = ts + timedelta(seconds=step)
        actor = rng.choice(ACTORS)
        effect = rng.choice(["allow", "allow", "deny", "approval_required", None])
        action = rng.choice(ACTIONS)
        if seq % 17 == 0:  # a dotted action, as the exchange records them
            action = "exchange.aggregate"
        events.append(AuditEvent(
            ts=ts if rng.random() > 0.1 else start + timedelta(hours=rng.randint(0, 200)),
            actor=actor, action=action, reporter="svc-test",
            id=f"{seed:04d}{seq:08d}{rng.getrandbits(32):08x}", seq=seq,
            dataset=rng.choice(DATASETS), fields=tuple(rng.sample(["name", "id_no", "phone"], 2)),
            grade=rng.choice(GRADES), rows=rng.randint(0, 5000), purpose=rng.choice(PURPOSES),
            reason=rng.choice(REASONS),
            decision=EventDecision(effect, "r-1", "v1") if effect else None,
            source_ip=SOURCE_IPS[seq % len(SOURCE_IPS)], labels={"k": "v"},
            outcome="failure" if seq % 13 == 0 else "success",
        ))
    return events


def _value(event: AuditEvent, name: str) -> str | None:
    return {
        "actor": event.actor.id, "role": event.actor.role, "org": event.actor.org,
        "action": event.action, "dataset": event.dataset, "grade": event.grade,
        "effect": event.effect, "outcome": event.outcome, "source_ip": event.source_ip,
    }[name]


def _matches(event: AuditEvent, name: str, value: str) -> bool:
    """One filter, read straight from monitor.search's docstring."""
    import ipaddress

    if name == "actor":
        return event.actor.id == value or (event.actor.name or "").lower() == value.lower()
    got = _value(event, name)
    if got is None:
        return False
    if name == "source_ip":
        if "/" in value:
            try:
                return ipaddress.ip_address(got) in ipaddress.ip_network(value)
            except ValueError:
                return False
        return got == value
    if name == "action":
        return got.lower() == value.lower() or got.lower().endswith("." + value.lower())
    return got.lower() == value.lower()


def _sort_value(event: AuditEvent, field: str) -> Any:
    if field == "ts":
        return event.ts
    if field == "seq":
        return event.seq or 0
    if field == "rows":
        return event.rows
    return _value(event, field)


def _bucket_key(ts: datetime, zone: ZoneInfo, unit: str) -> tuple[datetime, str]:
    local = ts.astimezone(zone)
    if unit in ("day", "week"):
        start = datetime(local.year, local.month, local.day, tzinfo=zone)
        if unit == "week":
            start = datetime.combine(start.date() - timedelta(days=start.weekday()),
                                     datetime.min.time(), tzinfo=zone)
    elif unit == "minute":
        start = local.replace(second=0, microsecond=0)
    else:
        start = local.replace(minute=0, second=0, microsecond=0)
    return start, start.isoformat()


def reference_search(events: Sequence[AuditEvent], query: SearchQuery) -> SearchResult:
    matched = []
    for event in events:
        if not all(_matches(event, k, v) for k, v in query.filters().items()):
            continue
        if any(_matches(event, k, v) for k, v in query.exclude):
            continue
        if query.since is not None and event.ts < query.since:
            continue
        if query.until is not None and event.ts >= query.until:
            continue
        texts = [(event.purpose or "").lower(), (event.reason or "").lower()]
        if not all(any(term in t for t in texts) for term in query.terms):
            continue
        matched.append(event)
    desc = query.sort.startswith("-")
    field = query.sort.lstrip("-")
    present = [e for e in matched if _sort_value(e, field) is not None]
    missing = [e for e in matched if _sort_value(e, field) is None]
    present.sort(key=lambda e: (_sort_value(e, field), e.seq or 0), reverse=desc)
    missing.sort(key=lambda e: e.seq or 0, reverse=desc)
    matched = present + missing  # events without the field come last either way
    aggs: dict[str, tuple[Bucket, ...]] = {}
    zone = ZoneInfo(query.tz)
    for name in query.aggs:
        if name == "sum(rows)":
            aggs[name] = (Bucket("rows", sum(e.rows or 0 for e in matched)),)
        elif name.startswith("by_"):
            field = name[3:]
            counts = Counter(v for e in matched if (v := _value(e, field)) is not None)
            aggs[name] = order_terms(counts)
        else:
            unit = name[4:]
            keys = Counter(_bucket_key(e.ts, zone, unit) for e in matched)
            aggs[name] = tuple(Bucket(k[1], c) for k, c in sorted(keys.items()))
    page = matched[query.offset: query.offset + query.size]
    return SearchResult(total=len(matched), hits=tuple(page), aggs=aggs)

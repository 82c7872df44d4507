"""A live service (uvicorn on a free port, in a thread) and a headless Chromium.

The browser tests skip only when /usr/bin/chromium is absent outside CI; with CI=true a
missing browser fails them (``.ci/run`` installs Debian's ``chromium``).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from quanguard.auth import Principal, create_key
from quanguard.container import Container, build_container
from tests.conftest import make_settings
from tests.serving import free_port

CHROMIUM = Path("/usr/bin/chromium")
# Headless, as root, on a machine with a closed network: without the background-networking
# flags Chromium keeps trying (and failing) to reach Google's hosts.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@dataclass
class LiveService:
    url: str
    container: Container
    keys: dict[str, tuple[str, Principal]]

    def key(self, role: str) -> str:
        return self.keys[role][0]


def _ensure_monitor_schema(container: Container) -> None:
    # A no-op once migration 0002 (monitor) exists; keeps these tests independent of it.
    from monitor.store import create_schema

    create_schema(container.engine)


def seed_trail(container: Container, n: int, *, seed: int = 5) -> list[Any]:
    """Record ``n`` generated reporter events the way ingest does (alerts evaluated)."""
    from tests.es_fixture import make_events

    events = [replace(e, seq=None, ingested=None) for e in make_events(n, seed=seed)]
    with container.session() as session, session.begin():
        return list(container.audit.record_batch(session, events, source="reporter"))


@pytest.fixture
def make_live(tmp_path: Path) -> Iterator[Callable[..., LiveService]]:
    """Start the service: ``make_live(es_prefix=None, **settings)``; stopped afterwards."""
    import uvicorn

    from quanguard.api.app import create_app

    started: list[tuple[Any, threading.Thread, Container]] = []

    def _make(*, es_prefix: str | None = None, seed: int = 0, **overrides: Any) -> LiveService:
        container = build_container(make_settings(tmp_path, **overrides))
        _ensure_monitor_schema(container)
        if es_prefix is not None:
            from quanguard.services.shipper import get_es

            service = get_es(container)
            assert service is not None
            service.prefix = service.sink.prefix = service.backend.prefix = es_prefix
            service.shipper.poll_interval = 0.05
        keys: dict[str, tuple[str, Principal]] = {}
        with container.session() as session, session.begin():
            for role in ("auditor", "manager", "consumer", "admin"):
                issued = create_key(session, role=role, org="市大数据局",
                                    name=f"{role}-{uuid.uuid4().hex[:6]}")
                keys[role] = (issued.key, issued.principal)
        if seed:
            seed_trail(container, seed)
        port = free_port()
        config = uvicorn.Config(create_app(container), host="127.0.0.1", port=port,
                                log_level="warning", lifespan="on", access_log=False)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        started.append((server, thread, container))
        return LiveService(f"http://127.0.0.1:{port}", container, keys)

    try:
        yield _make
    finally:
        for server, thread, container in started:
            server.should_exit = True
            thread.join(10)
            container.close()


@pytest.fixture
def live(make_live: Callable[..., LiveService]) -> LiveService:
    return make_live()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing in CI (apt-get install -y chromium)")
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(locale="zh-CN", java_script_enabled=False)
    pg = context.new_page()
    pg.set_default_timeout(10_000)
    try:
        yield pg
    finally:
        context.close()


@pytest.fixture
def sign_in(page: Any, live: LiveService) -> Callable[[str], Any]:
    def _sign_in(role: str) -> Any:
        page.goto(f"{live.url}/console")
        page.fill("#key", live.key(role))
        page.click("#signin")
        return page

    return _sign_in

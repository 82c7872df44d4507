"""What the tests and the benchmarks share about a real ``quanguard serve`` and PostgreSQL:
whether the database answers, and waiting for a started server to become ready.

Kept free of pytest so that ``bench/`` can import it."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import httpx
from sqlalchemy import create_engine, text


def pg_available(url: str) -> bool:
    """Whether PostgreSQL at ``url`` (``postgresql://...``) answers ``SELECT 1``."""
    try:
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001
        return False


def wait_ready(proc: subprocess.Popen[str] | subprocess.Popen[bytes], base: str, *, timeout: float,
               interval: float = 0.2, logs: Callable[[], str] = lambda: "") -> bool:
    """Poll ``base``/healthz until it answers 200 (True) or ``timeout`` seconds pass (False).

    Raises ``AssertionError`` with ``logs()`` as soon as the server process has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited {proc.returncode}: {logs()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=max(1.0, interval * 4)).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(interval)
    return False

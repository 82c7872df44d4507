"""What the tests and the benchmarks share about a real ``quanguard serve`` and PostgreSQL:
whether the database answers, a free port, waiting for a started server to become ready,
and stopping it.

Kept free of pytest so that ``bench/`` can import it."""

from __future__ import annotations

import socket
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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


def stop(proc: subprocess.Popen[str], *, timeout: float) -> tuple[str, str]:
    """Terminate ``proc`` and return its (stdout, stderr); killed if it is not gone after
    ``timeout`` seconds."""
    proc.terminate()
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()

"""What the benchmarks share: size options with ``--quick``, a served quanguard in a
subprocess, API keys, client threads, peak memory of a child process."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Generic, TypeVar

_T = TypeVar("_T")

CLI = [sys.executable, "-m", "quanguard.cli.main"]


def parse_sizes(parser: argparse.ArgumentParser, quick: dict[str, int], **sizes: int) -> argparse.Namespace:
    """Add ``--NAME N`` for each of ``sizes`` (its default) and ``--quick``, parse the command
    line, and with --quick cap the sizes named in ``quick`` (a smaller run, e.g. in CI)."""
    for name, default in sizes.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=default)
    parser.add_argument("--quick", action="store_true", help="at most " + ", ".join(
        f"{cap:,} {name.replace('_', ' ')}" for name, cap in quick.items()))
    args = parser.parse_args()
    if args.quick:
        for name, cap in quick.items():
            setattr(args, name, min(getattr(args, name), cap))
    return args


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def create_key(env: dict[str, str], workdir: Path, *, role: str, org: str, name: str) -> str:
    """A new API key, made with ``quanguard keys create`` against ``env``'s store."""
    return subprocess.run(
        [*CLI, "keys", "create", "--role", role, "--org", org, "--name", name],
        env=env, cwd=workdir, capture_output=True, text=True, check=True).stdout.strip()


@contextmanager
def served(env: dict[str, str], workdir: Path, *, timeout: float = 120.0) -> Iterator[str]:
    """``quanguard serve`` on a free port; yields its base URL once ``/healthz`` answers."""
    import httpx

    port = free_port()
    server = subprocess.Popen([*CLI, "serve", "--port", str(port)], env=env, cwd=workdir,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code < 500:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


def run_clients(clients: int, client: Callable[[], None]) -> float:
    """Run ``client`` on ``clients`` threads at once; the wall time until all are done."""
    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return time.perf_counter() - t0


class SharedWork(Generic[_T]):
    """Items that several client threads take one at a time (``for item in work``)."""

    def __init__(self, items: Iterable[_T]) -> None:
        self._items = iter(items)
        self._lock = threading.Lock()

    def __iter__(self) -> Iterator[_T]:
        return self

    def __next__(self) -> _T:
        with self._lock:
            return next(self._items)


def peak_rss(proc: subprocess.Popen[str] | subprocess.Popen[bytes], every: float = 0.2) -> int:
    """Poll ``proc`` until it exits; its largest resident set size seen, in bytes."""
    import psutil

    peak = 0
    try:
        ps = psutil.Process(proc.pid)
    except psutil.Error:
        return 0
    while proc.poll() is None:
        try:
            peak = max(peak, ps.memory_info().rss)
        except psutil.Error:
            break
        time.sleep(every)
    return peak

"""What the benchmarks share: size options with ``--quick``, a served quanguard in a
subprocess, API keys, client threads, peak memory of a child process."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Generic, TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.serving import free_port, stop, wait_ready

__all__ = ["CLI", "SharedWork", "child_usage", "compile_bytecode", "create_key", "free_port",
           "parse_sizes", "peak_rss", "run_clients", "served"]

_T = TypeVar("_T")

CLI = [sys.executable, "-m", "quanguard.cli.main"]
PACKAGES = ("quanguard", "monitor", "desensitize", "watermark", "exchange", "gmcrypto")


def compile_bytecode() -> None:
    """Compile the project's bytecode before a CLI start is timed, as installing a wheel does
    and as an editable install's first run does. A shell that sets
    ``PYTHONDONTWRITEBYTECODE`` would otherwise have every timed CLI start compile the
    project from source (about 0.1 s), which no user's second run pays."""
    import compileall

    for name in PACKAGES:
        if not compileall.compile_dir(str(ROOT / name), quiet=1):
            raise SystemExit(f"could not compile {name} to bytecode")


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


def create_key(env: dict[str, str], workdir: Path, *, role: str, org: str, name: str) -> str:
    """A new API key, made with ``quanguard keys create`` against ``env``'s store."""
    return subprocess.run(
        [*CLI, "keys", "create", "--role", role, "--org", org, "--name", name],
        env=env, cwd=workdir, capture_output=True, text=True, check=True).stdout.strip()


@contextmanager
def served(env: dict[str, str], workdir: Path, *, timeout: float = 120.0) -> Iterator[str]:
    """``quanguard serve`` on a free port; yields its base URL once ``/healthz`` answers 200.

    Stops the run (with the end of the server's log) if the server exits or is not ready in
    ``timeout`` seconds: a benchmark never times requests to a server that is not there."""
    port = free_port()
    log = workdir / f"serve-{port}.log"
    with log.open("w", encoding="utf-8") as sink:
        server = subprocess.Popen([*CLI, "serve", "--port", str(port)], env=env, cwd=workdir,
                                  stdout=sink, stderr=sink, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            ready = wait_ready(server, base, timeout=timeout, interval=0.3,
                               logs=lambda: log.read_text(encoding="utf-8")[-800:])
        except AssertionError as exited:
            raise SystemExit(f"error: {exited}") from None
        if not ready:
            raise SystemExit(f"error: the server did not become ready in {timeout:.0f} s")
        yield base
    finally:
        stop(server, timeout=30)


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


def child_usage(proc: subprocess.Popen[str] | subprocess.Popen[bytes], every: float = 0.2
                ) -> tuple[int, float]:
    """Wait for ``proc`` (its output must fit in the pipes) and return its own peak resident
    set size in bytes and its CPU seconds, from the kernel's accounting of that one child.

    The peak is the child's ``VmHWM`` (``/proc/PID/status``: the high-water mark of its own
    memory since it started the program), read while it runs; the last reading is kept,
    as the mark only grows. ``wait4``'s ``ru_maxrss`` is not used for it: Linux credits
    the parent's own high-water mark to a child at ``exec``, so a bench that once held a
    million rows would see every later child as large. It is the fallback when ``/proc``
    cannot be read. The CPU seconds are ``wait4``'s (that child only)."""
    status_file = Path(f"/proc/{proc.pid}/status")
    hwm = 0
    while True:
        try:
            for line in status_file.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    hwm = max(hwm, int(line.split()[1]) * 1024)
                    break
        except (OSError, ValueError, IndexError):
            pass  # exited (a zombie has no memory lines) or not readable
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return hwm or usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime
        time.sleep(every)

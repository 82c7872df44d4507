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
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import pytest

_START_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
        with urllib.request.urlopen(f"{url}/_cluster/health", timeout=1.0) as resp:  # noqa: S310
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
        self._proc = subprocess.Popen(  # noqa: S603
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
        """Stop the server as an outage would (SIGTERM, then SIGKILL); its data stays."""
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

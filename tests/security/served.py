"""A real ``quanguard serve`` process on a free loopback port with a store of its own.

Used by the security, fault and load tests: it can be killed with SIGKILL and restarted on
the same store. Logs go to files (a pipe would fill up under load and stall the server).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx

from quanguard.auth import create_key
from quanguard.config import Settings
from quanguard.container import build_container
from tests.conftest import POLICY_DIR, make_settings
from tests.serving import free_port, wait_ready

_KEY = re.compile(r"(qg_[0-9a-f]{8}_[A-Za-z0-9_\-]{43})")


def pg_url_with_schema(base: str, schema: str) -> str:
    """A PostgreSQL URL whose connections use ``schema`` (libpq ``options``)."""
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


class Served:
    """One service process. ``start()`` waits for /healthz; ``kill()`` is SIGKILL."""

    def __init__(self, root: Path, *, db_url: str | None = None, env: dict[str, str] | None = None) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db_url = db_url or f"sqlite:///{root / 'var' / 'quanguard.db'}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("QUANGUARD_")}
        self.env.update(
            {
                "QUANGUARD_DB_URL": self.db_url,
                "QUANGUARD_POLICY_DIR": str(POLICY_DIR),
                "QUANGUARD_KEY_DIR": str(root / "var" / "keys"),
                "QUANGUARD_DATA_DIR": str(root / "var"),
                "QUANGUARD_PORT": str(self.port),
                "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": "",
                "PYTHONUNBUFFERED": "1",
            }
        )
        self.env.update(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.admin_key: str | None = None
        self.starts = 0

    # --- process ------------------------------------------------------------------------
    @property
    def stdout_path(self) -> Path:
        return self.root / f"serve-{self.starts}.out"

    @property
    def stderr_path(self) -> Path:
        return self.root / f"serve-{self.starts}.err"

    def start(self, timeout: float = 90.0) -> None:
        self.starts += 1
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "quanguard.cli.main", "serve", "--port", str(self.port)],
                cwd=self.root,
                env=self.env,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        if not wait_ready(self.proc, self.url, timeout=timeout, logs=lambda: self.logs()[-2000:]):
            self.kill()
            raise AssertionError(f"server did not become ready: {self.logs()[-2000:]}")
        match = _KEY.search(self.stdout_path.read_text(errors="replace"))
        if match and self.admin_key is None:
            self.admin_key = match.group(1)

    def kill(self) -> None:
        """SIGKILL, no chance to clean up (what a power cut or the OOM killer does)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def logs(self) -> str:
        parts = []
        for i in range(1, self.starts + 1):
            for suffix in ("out", "err"):
                path = self.root / f"serve-{i}.{suffix}"
                if path.exists():
                    parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)

    # --- helpers ------------------------------------------------------------------------
    def settings(self) -> Settings:
        return make_settings(
            self.root,
            db_url=self.db_url,
            key_dir=self.root / "var" / "keys",
            data_dir=self.root / "var",
        )

    def make_key(self, role: str, org: str = "市大数据局", name: str | None = None) -> str:
        container = build_container(self.settings())
        try:
            with container.session() as s, s.begin():
                return create_key(s, role=role, org=org, name=name or f"{role}-{uuid.uuid4().hex[:8]}").key
        finally:
            container.close()

    def cli(self, *args: str, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``quanguard ARGS`` against the same store."""
        return subprocess.run(
            [sys.executable, "-m", "quanguard.cli.main", *args],
            cwd=self.root,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def client(self, key: str | None = None, timeout: float = 30.0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

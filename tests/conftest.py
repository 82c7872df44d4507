"""Shared fixtures: settings in a temp folder, SQLite and PostgreSQL stores, a client, keys."""

from __future__ import annotations

import io
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pytest
from sqlalchemy import create_engine, text

from gmcrypto import Suite, get_suite
from quanguard.auth import Principal, create_key
from quanguard.config import Settings, load_settings
from quanguard.container import Container, build_container
from tests.serving import pg_available

T = TypeVar("T")

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

pytest_plugins = ["tests.es_fixture"]

PG_URL = os.environ.get("QUANGUARD_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REPO = Path(__file__).resolve().parent.parent
POLICY_DIR = REPO / "policies"

# Nothing in the test run may fetch the public-suffix list.
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")


def active_suite() -> Suite:
    """The crypto suite of this run (``QUANGUARD_CRYPTO``), for keys built at import time
    (``Keyring(..., active_suite())``) so that ``make test-gm`` exercises the gm keys."""
    return get_suite(os.environ.get("QUANGUARD_CRYPTO"))


@pytest.fixture(scope="session")
def suite() -> Suite:
    """The crypto suite the run is under: ``QUANGUARD_CRYPTO=intl|gm`` (default intl).

    ``make_settings`` reads the same variable (Settings.crypto), so the trail, exchange
    and masking tests run under either suite: ``QUANGUARD_CRYPTO=gm pytest tests/monitor``.
    """
    return get_suite(os.environ.get("QUANGUARD_CRYPTO"))


def _pg_available() -> bool:
    return pg_available(PG_URL)


@pytest.fixture(scope="session")
def pg_ok() -> bool:
    ok = _pg_available()
    if not ok and os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is not reachable at {PG_URL} in CI")
    return ok


class PgSchema:
    """A fresh PostgreSQL schema for one test; dropped afterwards."""

    def __init__(self) -> None:
        self.name = f"qg_{uuid.uuid4().hex[:12]}"
        self.engine = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"))
        with self.engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{self.name}"'))

    def drop(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE'))
        self.engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_backend(request: pytest.FixtureRequest, tmp_path: Path, pg_ok: bool) -> Iterator[tuple[str, str | None]]:
    """(db_url, schema): a fresh SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}", None
        return
    if not pg_ok:
        pytest.skip("PostgreSQL not reachable")
    schema = PgSchema()
    try:
        yield PG_URL, schema.name
    finally:
        schema.drop()


def errors_on_threads(work: Callable[[], None], threads: int = 4) -> list[BaseException]:
    """Run ``work`` on ``threads`` threads at once; what they raised."""
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - returned to the test
            errors.append(exc)

    running = [threading.Thread(target=worker) for _ in range(threads)]
    for t in running:
        t.start()
    for t in running:
        t.join()
    return errors


@contextmanager
def write_held_elsewhere(container: Container, statement: str | None = None) -> Iterator[None]:
    """For the block: a unit of work of ``container`` held open by another thread (after
    ``statement``, when given), released and joined afterwards."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with container.unit_of_work() as session:
            if statement is not None:
                session.execute(text(statement))
            holding.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert holding.wait(10)
        yield
    finally:
        release.set()
        t.join(timeout=10)


def errors_on_threads_each(items: Iterable[T], work: Callable[[T], None],
                           threads: int = 4) -> list[BaseException]:
    """Hand each of ``items`` to one of ``threads`` threads running ``work`` at once;
    what they raised."""
    todo = iter(items)
    lock = threading.Lock()

    def drain() -> None:
        while True:
            with lock:
                item = next(todo, _DONE)
            if item is _DONE:
                return
            work(cast("T", item))

    return errors_on_threads(drain, threads=threads)


_DONE = object()


def cli_env(tmp: Path) -> dict[str, str]:
    """The environment of a CLI run whose store, keys and data are all under ``tmp/var``."""
    return {"QUANGUARD_POLICY_DIR": str(POLICY_DIR),
            "QUANGUARD_DB_URL": f"sqlite:///{tmp / 'var' / 'quanguard.db'}",
            "QUANGUARD_KEY_DIR": str(tmp / "var" / "keys"),
            "QUANGUARD_DATA_DIR": str(tmp / "var"), "QUANGUARD_ES_URL": ""}


@pytest.fixture
def cli_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """``cli_run("audit", "verify")``: the root CLI in ``tmp_path`` with ``cli_env`` and no
    API key in the environment."""
    from typer.testing import CliRunner

    from quanguard.cli.main import build_app

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QUANGUARD_API_KEY", raising=False)
    for key, value in cli_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    app, runner = build_app(), CliRunner()
    return lambda *args: runner.invoke(app, list(args))


def csv_bytes(table: Any) -> bytes:
    """A ``pyarrow.Table`` as CSV bytes (UTF-8, with a header)."""
    import pyarrow.csv as pacsv

    buf = io.BytesIO()
    pacsv.write_csv(table, buf)
    return buf.getvalue()


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "db_url": f"sqlite:///{tmp_path / 'var' / 'quanguard.db'}",
        "policy_dir": POLICY_DIR,
        "key_dir": tmp_path / "var" / "keys",
        "data_dir": tmp_path / "var",
        "es_url": None,
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def container(settings: Settings) -> Iterator[Container]:
    c = build_container(settings)
    yield c
    c.close()


@pytest.fixture
def any_container(db_backend: tuple[str, str | None], tmp_path: Path) -> Iterator[Container]:
    """The same tests on SQLite and on PostgreSQL."""
    url, schema = db_backend
    c = build_container(make_settings(tmp_path, db_url=url), schema=schema)
    yield c
    c.close()


@pytest.fixture
def make_key(container: Container) -> Callable[..., tuple[str, Principal]]:
    def _make(role: str, org: str = "市大数据局", name: str | None = None) -> tuple[str, Principal]:
        with container.session() as session, session.begin():
            issued = create_key(session, role=role, org=org, name=name or f"{role}-{uuid.uuid4().hex[:6]}")
        return issued.key, issued.principal

    return _make


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    from fastapi.testclient import TestClient

    from quanguard.api.app import create_app

    with TestClient(create_app(container)) as c:
        yield c


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}

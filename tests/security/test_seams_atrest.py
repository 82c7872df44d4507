"""Finding 11 of issue 11: data and keys at rest.

The database and encrypted blobs were 0644, and the master key sat inside the data
folder by default. Now: files 0600, folders 0700, keys in a folder of their own, `serve`
refuses a key folder others can read, and `quanguard keys rotate-master` re-wraps every
dataset key (audited). Every test here failed on the code before this change.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from exchange import Caller, Grading, MasterKey
from exchange.crypto import MASTER_KEY_FILE, SUBJECT_KEY_FILE
from quanguard.cli.main import build_app
from quanguard.config import Settings
from quanguard.container import Container, build_container
from tests.conftest import POLICY_DIR, make_settings

OWNER = Caller(id="p-1", role="provider", org="市人社局")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """Run as a default install would (umask 022), and restore whatever `serve` sets."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Container]:
    container = build_container(make_settings(tmp_path, key_dir=tmp_path / "keys"))
    yield container
    container.close()


def _register(container: Container, name: str) -> None:
    table = pa.table({"id": [f"k{i}" for i in range(20)], "amount": list(range(20))})
    with container.session() as session, session.begin():
        container.exchange.catalog.register(session, name=name, table=table, owner=OWNER,
                                            grading=Grading("L2"), now=datetime.now(UTC))


def _load(container: Container, name: str) -> pa.Table:
    with container.session() as session:
        table: pa.Table = container.exchange.catalog.load_table(session, name)
    return table


# -- files 0600, folders 0700 ----------------------------------------------------------------
def test_database_file_and_folders_are_private(live: Container) -> None:
    db = Path(live.settings.db_url.removeprefix("sqlite:///"))
    with live.session() as session, session.begin():
        session.execute(sa.text("CREATE TABLE IF NOT EXISTS t_probe (x int)"))
    assert _mode(db) == 0o600
    for companion in (db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        if companion.exists():
            assert _mode(companion) == 0o600, companion
    assert _mode(live.settings.data_dir) == 0o700
    assert _mode(live.settings.key_dir) == 0o700


def test_a_loose_existing_database_is_tightened(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, key_dir=tmp_path / "keys")
    build_container(settings).close()
    db = Path(settings.db_url.removeprefix("sqlite:///"))
    os.chmod(db, 0o644)
    os.chmod(settings.data_dir, 0o755)
    build_container(settings).close()
    assert _mode(db) == 0o600 and _mode(settings.data_dir) == 0o700


def test_encrypted_blobs_are_private(live: Container) -> None:
    _register(live, "blob_probe")
    with live.session() as session:
        blob = live.exchange.catalog.blob_path(session, "blob_probe")
    assert _mode(blob) == 0o600
    assert _mode(blob.parent) == 0o700


# -- the key folder is not inside the data folder ----------------------------------------------
def test_default_key_folder_is_outside_the_data_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("QUANGUARD_KEY_DIR", "QUANGUARD_DATA_DIR"):
        monkeypatch.delenv(var, raising=False)
    settings = Settings()
    keys, data = settings.key_dir.resolve(), settings.data_dir.resolve()
    assert not keys.is_relative_to(data) and not data.is_relative_to(keys)


# -- serve refuses a key folder others can read ----------------------------------------------
@pytest.fixture
def serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], Any]:
    import uvicorn

    monkeypatch.chdir(tmp_path)
    env = {"QUANGUARD_POLICY_DIR": str(POLICY_DIR), "QUANGUARD_ES_URL": "",
           "QUANGUARD_DB_URL": f"sqlite:///{tmp_path / 'var' / 'quanguard.db'}",
           "QUANGUARD_KEY_DIR": str(tmp_path / "keys"),
           "QUANGUARD_DATA_DIR": str(tmp_path / "var")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("QUANGUARD_API_KEY", raising=False)

    def refuse_to_serve(*_a: Any, **_k: Any) -> None:
        raise AssertionError("the service started")

    monkeypatch.setattr(uvicorn, "run", refuse_to_serve)
    app = build_app()
    return lambda: CliRunner().invoke(app, ["serve"])


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660], ids=oct)
def test_serve_refuses_key_files_others_can_read(serve: Callable[[], Any], tmp_path: Path,
                                                  mode: int) -> None:
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    (keys / MASTER_KEY_FILE).write_bytes(os.urandom(32))
    os.chmod(keys / MASTER_KEY_FILE, mode)
    result = serve()
    assert result.exit_code == 2, result.output  # kind "invalid" in the error table
    assert MASTER_KEY_FILE in result.stderr and "chmod 600" in result.stderr
    assert not (tmp_path / "var" / "quanguard.db").exists()  # judged before anything opened


def test_serve_refuses_an_interrupted_rotation(serve: Callable[[], Any], tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    for name in (MASTER_KEY_FILE, MASTER_KEY_FILE + ".new"):
        fd = os.open(keys / name, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, os.urandom(32))
        os.close(fd)
    result = serve()
    assert result.exit_code == 6, result.output
    assert "rotate-master" in result.stderr


# -- rotate-master ---------------------------------------------------------------------------
@pytest.fixture
def cli(live: Container, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    s = live.settings
    for key, value in {"QUANGUARD_DB_URL": s.db_url, "QUANGUARD_POLICY_DIR": str(s.policy_dir),
                       "QUANGUARD_KEY_DIR": str(s.key_dir),
                       "QUANGUARD_DATA_DIR": str(s.data_dir), "QUANGUARD_ES_URL": ""}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("QUANGUARD_API_KEY", raising=False)
    app = build_app()
    return lambda *args: CliRunner().invoke(app, list(args))


def _wrapped(container: Container) -> dict[str, bytes]:
    from exchange.tables import datasets

    with container.session() as session:
        rows = session.execute(sa.select(datasets.c.name, datasets.c.wrapped_key)).all()
    return {name: bytes(w) for name, w in rows}


def test_rotate_master_rewraps_every_dataset_key(live: Container,
                                                 cli: Callable[..., Any]) -> None:
    _register(live, "a")
    _register(live, "b")
    before_tables = {n: _load(live, n) for n in ("a", "b")}
    before_wrapped = _wrapped(live)
    key_dir = live.settings.key_dir
    old_secret = (key_dir / MASTER_KEY_FILE).read_bytes()
    suite = live.settings.suite  # QUANGUARD_CRYPTO of the run: SM4-GCM wraps under gm
    subject_before = MasterKey.from_dir(key_dir, suite).subject_key("a")

    result = cli("keys", "rotate-master", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["datasets"] == 2 and doc["old_key_id"] != doc["new_key_id"]
    assert old_secret.hex() not in result.output  # ids, never keys

    new_secret = (key_dir / MASTER_KEY_FILE).read_bytes()
    assert new_secret != old_secret and _mode(key_dir / MASTER_KEY_FILE) == 0o600
    after_wrapped = _wrapped(live)
    assert set(after_wrapped) == {"a", "b"}
    assert all(after_wrapped[n] != before_wrapped[n] for n in after_wrapped)
    # a fresh service opens every dataset with the new key; the old key opens none
    fresh = build_container(live.settings)
    try:
        for name, table in before_tables.items():
            assert _load(fresh, name).equals(table)
    finally:
        fresh.close()
    old = MasterKey(old_secret, suite=suite)
    from exchange.errors import IntegrityFailure
    with pytest.raises(IntegrityFailure):
        old.unwrap(after_wrapped["a"], "a")
    # consent hashes made before the rotation still match
    assert MasterKey.from_dir(key_dir, suite).subject_key("a") == subject_before
    assert _mode(key_dir / SUBJECT_KEY_FILE) == 0o600
    # audited, in the same transaction as the re-wrap
    with live.session() as session:
        bodies = [r[0] for r in session.execute(sa.text(
            "SELECT body FROM audit_events WHERE action = 'key_rotate_master'"))]
    assert len(bodies) == 1
    assert doc["old_key_id"] in bodies[0] and doc["new_key_id"] in bodies[0]


def test_rotation_that_fails_midway_changes_nothing(live: Container, cli: Callable[..., Any],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import exchange.catalog

    _register(live, "a")
    key_dir = live.settings.key_dir
    old_secret = (key_dir / MASTER_KEY_FILE).read_bytes()
    before = _wrapped(live)
    real = exchange.catalog.rewrap_keys

    def crash(session: Any, old: MasterKey, new: MasterKey) -> int:
        real(session, old, new)
        raise OSError("disk full")

    monkeypatch.setattr("quanguard.usecases.rotate.rewrap_keys", crash)
    result = cli("keys", "rotate-master")
    assert result.exit_code != 0
    assert (key_dir / MASTER_KEY_FILE).read_bytes() == old_secret
    assert not (key_dir / (MASTER_KEY_FILE + ".new")).exists()
    assert _wrapped(live) == before
    fresh = build_container(live.settings)
    try:
        assert _load(fresh, "a").num_rows == 20
    finally:
        fresh.close()


def test_rotation_interrupted_after_commit_is_completed(
    live: Container, cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _register(live, "a")
    key_dir = live.settings.key_dir
    real_replace = os.replace

    def crash_on_swap(src: Any, dst: Any) -> None:
        if str(src).endswith(".new"):
            raise KeyboardInterrupt  # the process dies between commit and rename
        real_replace(src, dst)

    monkeypatch.setattr("quanguard.usecases.rotate.os.replace", crash_on_swap)
    cli("keys", "rotate-master")
    monkeypatch.setattr("quanguard.usecases.rotate.os.replace", real_replace)
    assert (key_dir / (MASTER_KEY_FILE + ".new")).exists()
    result = cli("keys", "rotate-master", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["recovered_interrupted"] == "completed"
    fresh = build_container(live.settings)
    try:
        assert _load(fresh, "a").num_rows == 20
    finally:
        fresh.close()


def test_rotate_master_is_refused_to_non_admins(live: Container, cli: Callable[..., Any],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from quanguard.auth import create_key

    with live.session() as session, session.begin():
        key = create_key(session, role="consumer", org="某商业银行", name="c1").key
    monkeypatch.setenv("QUANGUARD_API_KEY", key)
    result = cli("keys", "rotate-master")
    assert result.exit_code == 4, result.output
    with live.session() as session:
        denied = session.execute(sa.text(
            "SELECT count(*) FROM audit_events WHERE action = 'key_rotate_master' "
            "AND effect = 'deny'")).scalar_one()
    assert denied == 1


def test_keys_left_in_the_old_default_place_are_not_silently_replaced(tmp_path: Path) -> None:
    """Upgrading with keys in ./var/keys must not start with fresh keys that open nothing."""
    from quanguard.errors import Conflict

    old = make_settings(tmp_path)  # keys inside the data folder, as the old default had it
    container = build_container(old)
    assert container.audit.signer.key_id  # the trail's signing key is created
    container.close()
    moved = make_settings(tmp_path, key_dir=tmp_path / "keys")
    with pytest.raises(Conflict, match="move them"):
        build_container(moved)
    assert not (tmp_path / "keys").exists()

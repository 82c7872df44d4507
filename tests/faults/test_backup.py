"""`quanguard backup` / `restore`: round trips on SQLite and PostgreSQL, fail-closed restore."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from quanguard.auth import authenticate, create_key
from quanguard.cli.main import build_app
from quanguard.container import Container, build_container
from quanguard.errors import Conflict
from quanguard.models import PrincipalRow
from quanguard.usecases.backup import BackupIntegrity, backup, restore, store_is_empty
from tests.conftest import PgSchema, make_settings


def _populate(container: Container, n: int = 5) -> list[str]:
    keys = []
    with container.session() as s, s.begin():
        for i in range(n):
            keys.append(create_key(s, role="provider", org=f"市局{i}", name=f"p{i}").key)
    kd = container.settings.key_dir
    (kd / "mask.key").write_bytes(os.urandom(32))
    (kd / "mask.key").chmod(0o600)
    (kd / "sub").mkdir(exist_ok=True)
    (kd / "sub" / "wm.key").write_bytes(os.urandom(64))
    (kd / "sub" / "wm.key").chmod(0o600)
    (container.settings.data_dir / "datasets").mkdir(exist_ok=True)
    (container.settings.data_dir / "datasets" / "d1.bin").write_bytes(b"\x00ciphertext" * 100)
    return keys


def _principals(container: Container) -> list[tuple[object, ...]]:
    with container.session() as s:
        rows = s.scalars(select(PrincipalRow).order_by(PrincipalRow.name)).all()
        return [(r.id, r.name, r.role, r.org, r.key_hash, r.created_at.replace(tzinfo=None)) for r in rows]


def _files(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mode & 0o777)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _fresh(tmp_path: Path, name: str, url: str, schema: str | None) -> Container:
    base = tmp_path / name
    db_url = f"sqlite:///{base / 'var' / 'quanguard.db'}" if url.startswith("sqlite") else url
    return build_container(make_settings(base, db_url=db_url), schema=schema)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_round_trip_restores_rows_keys_and_modes(tmp_path: Path, backend: str, pg_ok: bool) -> None:
    if backend == "postgresql" and not pg_ok:
        pytest.skip("PostgreSQL not reachable")
    schemas = [PgSchema(), PgSchema()] if backend == "postgresql" else [None, None]
    url = "postgresql://postgres@127.0.0.1:5432/test" if backend == "postgresql" else "sqlite"
    try:
        src = _fresh(tmp_path, "a", url, schemas[0].name if schemas[0] else None)
        keys = _populate(src)
        archive = tmp_path / "backup.tar.gz"
        summary = backup(src, archive)
        assert summary.tables["principals"] == 5
        assert oct(archive.stat().st_mode & 0o777) == "0o600"
        before_rows, before_keys = _principals(src), _files(src.settings.key_dir)
        src.close()

        dst = _fresh(tmp_path, "b", url, schemas[1].name if schemas[1] else None)
        assert store_is_empty(dst)
        result = restore(dst, archive)
        assert result.keys == 2 and result.data_files == 1
        assert _principals(dst) == before_rows
        assert _files(dst.settings.key_dir) == before_keys
        assert all(mode == 0o600 for _, mode in before_keys.values())
        assert oct(dst.settings.key_dir.stat().st_mode & 0o777) == "0o700"
        assert (dst.settings.data_dir / "datasets" / "d1.bin").read_bytes() == b"\x00ciphertext" * 100
        with dst.session() as s:
            assert authenticate(s, keys[3]).org == "市局3"
        # The restored store takes new writes (sequences/ids not clobbered).
        with dst.session() as s, s.begin():
            create_key(s, role="consumer", org="银行", name="after-restore")
        dst.close()
    finally:
        for schema in schemas:
            if schema is not None:
                schema.drop()


def test_manifest_lists_every_member_with_its_suite_digest(container: Container, tmp_path: Path) -> None:
    _populate(container)
    archive = tmp_path / "b.tar.gz"
    backup(container, archive)
    with tarfile.open(archive, "r:gz") as tar:
        names = tar.getnames()
        manifest_file = tar.extractfile("manifest.json")
        assert manifest_file is not None
        manifest = json.loads(manifest_file.read())
        suite = container.settings.suite
        first_file = tar.extractfile(names[1])
        assert first_file is not None
        first = first_file.read()
    assert names[0] == "manifest.json"
    assert sorted(m["name"] for m in manifest["members"]) == sorted(names[1:])
    # the manifest names its hash (sm3 under gm) and each member carries it
    assert manifest["hash_alg"] == suite.hash_alg
    assert all(len(m[suite.hash_alg]) == 64 for m in manifest["members"])
    assert manifest["members"][0][suite.hash_alg] == suite.hexdigest(first)
    assert "db/sqlite.db" in names and "keys/mask.key" in names and "data/datasets/d1.bin" in names
    assert not any(n.endswith(("quanguard.db", "-wal", "-shm")) and n.startswith("data/") for n in names)


def test_backup_refuses_to_overwrite(container: Container, tmp_path: Path) -> None:
    archive = tmp_path / "b.tar.gz"
    archive.write_bytes(b"keep me")
    with pytest.raises(Conflict):
        backup(container, archive)
    assert archive.read_bytes() == b"keep me"


def test_restore_refuses_a_non_empty_store_without_force(container: Container, tmp_path: Path) -> None:
    _populate(container, 2)
    archive = tmp_path / "b.tar.gz"
    backup(container, archive)
    with container.session() as s, s.begin():
        create_key(s, role="auditor", org="网信办", name="late")
    with pytest.raises(Conflict, match="--force"):
        restore(container, archive)
    assert "late" in [r[1] for r in _principals(container)]
    restore(container, archive, force=True)
    assert [r[1] for r in _principals(container)] == ["p0", "p1"]


Edit = Callable[[tarfile.TarInfo, bytes], Iterator[tuple[tarfile.TarInfo, bytes]]]


def _rewrite(archive: Path, out: Path, edit: Edit) -> None:
    """Copy ``archive`` to ``out`` passing each (TarInfo, bytes) through ``edit``."""
    with tarfile.open(archive, "r:gz") as src, tarfile.open(out, "w:gz") as dst:
        for member in src:
            extracted = src.extractfile(member)
            assert extracted is not None
            data = extracted.read()
            for info, payload in edit(member, data):
                info.size = len(payload)
                dst.addfile(info, io.BytesIO(payload))


def _flip_key(member: tarfile.TarInfo, data: bytes) -> Iterator[tuple[tarfile.TarInfo, bytes]]:
    if member.name == "keys/mask.key":
        data = bytes([data[0] ^ 1]) + data[1:]
    yield member, data


def _add_traversal(member: tarfile.TarInfo, data: bytes) -> Iterator[tuple[tarfile.TarInfo, bytes]]:
    yield member, data
    if member.name == "keys/mask.key":
        evil = tarfile.TarInfo("keys/../../../evil.txt")
        yield evil, b"pwned"


def _add_symlink(member: tarfile.TarInfo, data: bytes) -> Iterator[tuple[tarfile.TarInfo, bytes]]:
    yield member, data
    if member.name == "manifest.json":
        link = tarfile.TarInfo("keys/link")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        yield link, b""


def _drop_member(member: tarfile.TarInfo, data: bytes) -> Iterator[tuple[tarfile.TarInfo, bytes]]:
    if member.name != "keys/sub/wm.key":
        yield member, data


def _manifest_without_hash_alg(member: tarfile.TarInfo, data: bytes) -> Iterator[tuple[tarfile.TarInfo, bytes]]:
    """An archive written before manifests named their hash: sha256 digests, no name."""
    if member.name == "manifest.json":
        manifest = json.loads(data)
        if manifest.pop("hash_alg") != "sha256":
            for m in manifest["members"]:
                m["sha256"] = m.pop("sm3")  # an sm3 digest where sha256 is expected
        data = json.dumps(manifest).encode()
    yield member, data


def _forge_manifest(member: tarfile.TarInfo, data: bytes) -> Iterator[tuple[tarfile.TarInfo, bytes]]:
    if member.name == "manifest.json":
        manifest = json.loads(data)
        manifest["format"] = "something-else/9"
        data = json.dumps(manifest).encode()
    yield member, data


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_flip_key, "sha256|sm3"),
        (_add_traversal, "unexpected member"),
        (_add_symlink, "unexpected member"),
        (_drop_member, "missing"),
        (_forge_manifest, "unknown backup format"),
    ],
)
def test_damaged_archives_are_refused_and_change_nothing(container: Container, tmp_path: Path, edit: Edit, message: str) -> None:
    _populate(container, 3)
    archive = tmp_path / "b.tar.gz"
    backup(container, archive)
    bad = tmp_path / "bad.tar.gz"
    _rewrite(archive, bad, edit)
    with container.session() as s, s.begin():
        create_key(s, role="auditor", org="网信办", name="sentinel")
    before_rows, before_keys = _principals(container), _files(container.settings.key_dir)
    with pytest.raises(BackupIntegrity, match=message):
        restore(container, bad, force=True)
    assert _principals(container) == before_rows
    assert _files(container.settings.key_dir) == before_keys
    assert not (tmp_path / "evil.txt").exists()
    assert not any(p.name.startswith(".qg-restore-") for p in container.settings.data_dir.iterdir())


def test_a_manifest_from_before_the_suites_is_read_as_sha256(container: Container, tmp_path: Path) -> None:
    """Old archives carry no ``hash_alg``: their digests are SHA-256 and still restore; an
    SM3 digest passed off as one of them is refused."""
    _populate(container, 2)
    archive = tmp_path / "b.tar.gz"
    backup(container, archive)
    old = tmp_path / "old.tar.gz"
    _rewrite(archive, old, _manifest_without_hash_alg)
    if container.settings.suite.hash_alg == "sha256":
        restore(container, old, force=True)
        assert [r[1] for r in _principals(container)] == ["p0", "p1"]
    else:
        with pytest.raises(BackupIntegrity, match="does not match its sha256"):
            restore(container, old, force=True)


@pytest.mark.parametrize("payload", [b"", b"not a tarball", gzip.compress(b"x" * 1000)])
def test_garbage_archives_are_integrity_errors(container: Container, tmp_path: Path, payload: bytes) -> None:
    bad = tmp_path / "junk.tar.gz"
    bad.write_bytes(payload)
    with pytest.raises(BackupIntegrity):
        restore(container, bad, force=True)


def test_truncated_archive_is_refused(container: Container, tmp_path: Path) -> None:
    _populate(container, 3)
    archive = tmp_path / "b.tar.gz"
    backup(container, archive)
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(BackupIntegrity):
        restore(container, cut, force=True)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    monkeypatch.chdir(tmp_path)
    for var in ("QUANGUARD_API_KEY", "QUANGUARD_DB_URL", "QUANGUARD_KEY_DIR", "QUANGUARD_DATA_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("QUANGUARD_POLICY_DIR", str(Path(__file__).resolve().parents[2] / "policies"))
    app = build_app()
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


def test_cli_backup_wipe_restore(cli: Callable[..., Result], tmp_path: Path) -> None:
    key = cli("keys", "create", "--role", "manager", "--org", "市大数据局", "--name", "m1").stdout.strip()
    r = cli("backup", "out.tar.gz", "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["tables"]["principals"] == 1
    r = cli("backup", "out.tar.gz")
    assert r.exit_code == 6 and r.stderr.startswith("error: ") and "Traceback" not in r.output
    r = cli("restore", "out.tar.gz")
    assert r.exit_code == 6 and "--force" in r.stderr
    shutil.rmtree(tmp_path / "var")  # the machine is lost: its data folder
    shutil.rmtree(tmp_path / "keys")  # and its key folder (kept apart from the data)
    r = cli("restore", "out.tar.gz", "--format", "json")
    assert r.exit_code == 0, r.output
    listed = json.loads(cli("keys", "list", "--format", "json").stdout)
    assert [k["name"] for k in listed] == ["m1"]
    assert key not in r.output
    r = cli("restore", "missing.tar.gz", "--force")
    assert r.exit_code == 2 and r.stderr.count("\n") == 1


def test_cli_backup_by_non_admin_key_is_forbidden(cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:
    key = cli("keys", "create", "--role", "consumer", "--org", "银行", "--name", "c1").stdout.strip()
    monkeypatch.setenv("QUANGUARD_API_KEY", key)
    r = cli("backup", "x.tar.gz")
    assert r.exit_code == 4 and "policy does not allow backup" in r.stderr


def _ndjson(path: Path, tag: str, n: int) -> Path:
    from datetime import UTC, datetime

    lines = [
        json.dumps({"ts": datetime.now(UTC).isoformat(), "actor": {"id": f"u{i}", "role": "consumer", "org": "某银行"},
                    "action": "query", "dataset": tag, "rows": i, "decision": "allow"}, ensure_ascii=False)
        for i in range(n)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_restored_trail_verifies_against_an_exported_checkpoint(cli: Callable[..., Result], tmp_path: Path) -> None:
    r = cli("audit", "ingest", str(_ndjson(tmp_path / "a.ndjson", "before", 200)))
    assert r.exit_code == 0, r.output
    r = cli("audit", "checkpoint", "--export", str(tmp_path / "cp1.json"))
    assert r.exit_code == 0, r.output
    assert cli("backup", "old.tar.gz").exit_code == 0
    assert cli("audit", "ingest", str(_ndjson(tmp_path / "b.ndjson", "after", 50))).exit_code == 0
    assert cli("audit", "checkpoint", "--export", str(tmp_path / "cp2.json")).exit_code == 0
    assert cli("backup", "new.tar.gz").exit_code == 0

    shutil.rmtree(tmp_path / "var")  # the machine is lost: its data folder
    shutil.rmtree(tmp_path / "keys")  # and its key folder (kept apart from the data)
    r = cli("restore", "new.tar.gz")
    assert r.exit_code == 0, r.output
    r = cli("audit", "verify", "--checkpoint", str(tmp_path / "cp1.json"), "--checkpoint", str(tmp_path / "cp2.json"))
    assert r.exit_code == 0, r.output

    # Restoring the older archive is a rollback: the later exported checkpoint catches it.
    r = cli("restore", "old.tar.gz", "--force")
    assert r.exit_code == 0, r.output
    assert cli("audit", "verify", "--checkpoint", str(tmp_path / "cp1.json")).exit_code == 0
    r = cli("audit", "verify", "--checkpoint", str(tmp_path / "cp2.json"))
    assert r.exit_code == 1 and "truncat" in r.stderr.lower(), r.stderr

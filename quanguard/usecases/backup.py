"""Backup and restore of one installation: the database, the key folder and the data folder.

An archive is a gzip'd tar with ``manifest.json`` first and then its members:

* ``db/sqlite.db`` — a consistent copy made with SQLite's online backup API (SQLite stores);
* ``db/tables/<table>.jsonl`` + ``db/tables.json`` — every table dumped row by row through
  SQLAlchemy (PostgreSQL stores; restorable into any migrated store);
* ``keys/...`` — the key folder, modes kept (0600 files);
* ``data/...`` — other files of the data folder (encrypted datasets, exports).

The manifest lists every member with its size, mode and digest under the deployment's
crypto suite: ``hash_alg`` names it (``sha256``, or ``sm3`` under gm) and each member
carries its digest under that name; a manifest without ``hash_alg`` (older archives) is
sha256. The archive's own checksum printed after a backup stays SHA-256 whatever the
suite, so that ``sha256sum`` checks a copy in transit. Restore fails closed:

1. read the manifest; refuse unknown formats;
2. every tar entry must be a regular file named in the manifest (no links, no absolute or
   ``..`` names) and hash to the manifest's digest; every manifest member must be present;
3. refuse a non-empty target store unless ``force``;
4. stage the key and data folders beside their targets, load the database in one
   transaction (SQLite: the backup API into the live file, which is atomic), then swap the
   staged folders in by rename.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import uuid
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache, partial
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, TypedDict, cast

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    Table,
    delete,
    func,
    insert,
    select,
    types,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SAWarning

from gmcrypto import INTL, CryptoSuiteError, Suite, suite_for_hash
from quanguard.container import Container
from quanguard.errors import Conflict, InvalidInput, ServiceError, Unavailable
from quanguard.gate import authorize

if TYPE_CHECKING:
    from quanguard.auth import Principal
    from quanguard.policy.model import Decision

__all__ = ["BackupIntegrity", "BackupSummary", "RestoreSummary", "backup", "record", "restore", "store_is_empty"]

FORMAT = "quanguard-backup/1"
_MANIFEST = "manifest.json"


class _Member(TypedDict):
    """One member of the archive as the manifest lists it (its digest is under the key the
    manifest's ``hash_alg`` names: ``sha256``, or ``sm3`` under gm)."""

    name: str
    size: int
    mode: int


class _Manifest(TypedDict, total=False):
    """``manifest.json``: what the archive holds (a reader checks what it relies on)."""

    format: str
    created_at: str
    backend: str
    alembic_heads: list[str]
    tables: dict[str, int]
    hash_alg: str
    members: list[_Member]


_CHUNK = 1 << 20
_MAX_MANIFEST = 16 << 20


class BackupIntegrity(ServiceError):
    """The archive does not match its manifest (damaged, truncated or tampered with)."""

    kind = "integrity"


@dataclass(frozen=True)
class BackupSummary:
    archive: str
    backend: str
    members: int
    tables: dict[str, int]
    bytes: int
    sha256: str


@dataclass(frozen=True)
class RestoreSummary:
    archive: str
    backend: str
    tables: dict[str, int]
    keys: int
    data_files: int


# --- helpers ---------------------------------------------------------------------------
def _digest_file(path: Path, suite: Suite = INTL) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, suite.new_hash).hexdigest()


def _sqlite_path(engine: Engine) -> Path | None:
    url = make_url(str(engine.url))
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        raise InvalidInput("an in-memory SQLite store cannot be backed up")
    return Path(database).resolve()


def _tables(engine: Engine) -> list[Table]:
    meta = MetaData()
    with warnings.catch_warnings():
        # expression indexes (lower(actor_name), 0014) are not reflected; only the rows are copied
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index",
                                SAWarning)
        meta.reflect(bind=engine)
    return [t for t in meta.sorted_tables if t.name != "alembic_version" and not t.name.startswith("sqlite_")]


@lru_cache(maxsize=1)
def _seeded_rows() -> dict[str, int]:
    """Rows a freshly migrated store holds (singleton state rows seeded by migrations)."""
    from quanguard.db import make_engine, migrate

    engine = make_engine("sqlite://")
    try:
        migrate(engine)
        with engine.connect() as conn:
            return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in _tables(engine)}
    finally:
        engine.dispose()


def store_is_empty(container: Container) -> bool:
    """True when the store holds no more than a fresh one and the key folder has no files."""
    key_dir = container.settings.key_dir
    if key_dir.exists() and any(p.is_file() for p in key_dir.rglob("*")):
        return False
    seeded = _seeded_rows()
    with container.engine.connect() as conn:
        for table in _tables(container.engine):
            if conn.execute(select(func.count()).select_from(table)).scalar_one() > seeded.get(table.name, 0):
                return False
    return True


def _encode(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Decimal):
        return str(value)
    return value


def _decode(column: Column[Any], value: object) -> object:
    if value is None:
        return None
    kind = column.type
    if isinstance(kind, types.DateTime) and isinstance(value, str):
        parsed = datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if isinstance(kind, types.Date) and isinstance(value, str):
        return date.fromisoformat(value)
    if isinstance(kind, types.LargeBinary | types._Binary) and isinstance(value, str):
        return base64.b64decode(value)
    if isinstance(kind, types.Numeric) and isinstance(value, str):
        return Decimal(value)
    return value


def _files_under(root: Path, *, skip: set[Path]) -> Iterator[Path]:
    if not root.is_dir():
        return
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        resolved = path.resolve()
        if resolved in skip or any(parent in skip for parent in resolved.parents):
            continue
        if path.name.endswith((".tmp", ".part", "-journal")):
            continue
        yield path


# --- backup ----------------------------------------------------------------------------
def _dump_tables(engine: Engine, out: Path) -> tuple[dict[str, int], list[str]]:
    counts: dict[str, int] = {}
    order: list[str] = []
    out.mkdir(parents=True)
    with engine.connect() as conn:
        for table in _tables(engine):
            order.append(table.name)
            n = 0
            with (out / f"{table.name}.jsonl").open("w", encoding="utf-8") as fh:
                for row in conn.execute(select(table)).mappings():
                    fh.write(json.dumps({k: _encode(v) for k, v in row.items()}, ensure_ascii=False) + "\n")
                    n += 1
            counts[table.name] = n
    return counts, order


def _copy_sqlite(source: Path, dest: Path) -> dict[str, int]:
    src = sqlite3.connect(str(source), timeout=30)
    dst = sqlite3.connect(str(dest))
    try:
        src.backup(dst)  # the online backup API: a consistent snapshot while others write
        names = [r[0] for r in dst.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        counts = {
            n: int(dst.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0])
            for n in names
            if n != "alembic_version" and not n.startswith("sqlite_")
        }
    finally:
        dst.close()
        src.close()
    return counts


def _alembic_heads(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        try:
            return sorted(r[0] for r in conn.exec_driver_sql("SELECT version_num FROM alembic_version"))
        except Exception:  # noqa: BLE001 - an unmigrated store has no version table
            return []


def _write_archive(container: Container, out: Path, db_file: Path | None) -> tuple[dict[str, int], int]:
    settings = container.settings
    engine = container.engine
    suite = settings.suite
    with tempfile.TemporaryDirectory(prefix=".qg-backup-", dir=out.parent) as tmp:
        stage = Path(tmp)
        members: list[tuple[str, Path]] = []
        if db_file is not None:
            counts = _copy_sqlite(db_file, stage / "sqlite.db")
            members.append(("db/sqlite.db", stage / "sqlite.db"))
        else:
            counts, order = _dump_tables(engine, stage / "tables")
            (stage / "tables.json").write_text(json.dumps(order), encoding="utf-8")
            members.append(("db/tables.json", stage / "tables.json"))
            members += [(f"db/tables/{name}.jsonl", stage / "tables" / f"{name}.jsonl") for name in order]
        key_dir = settings.key_dir.resolve()
        for path in _files_under(key_dir, skip=set()):
            members.append((f"keys/{path.relative_to(key_dir).as_posix()}", path))
        skip = {key_dir, out.resolve(), stage.resolve()}
        if db_file is not None:
            skip |= {db_file, Path(f"{db_file}-wal"), Path(f"{db_file}-shm")}
        data_dir = settings.data_dir.resolve()
        for path in _files_under(data_dir, skip=skip):
            members.append((f"data/{path.relative_to(data_dir).as_posix()}", path))
        entries: list[dict[str, object]] = [
            {"name": name, "size": p.stat().st_size, "mode": p.stat().st_mode & 0o777,
             suite.hash_alg: _digest_file(p, suite)}
            for name, p in members
        ]
        manifest: dict[str, object] = {
            "format": FORMAT,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "backend": engine.dialect.name,
            "alembic_heads": _alembic_heads(engine),
            "tables": counts,
            "hash_alg": suite.hash_alg,
            "members": entries,
        }
        partial = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.part")
        try:
            with tarfile.open(partial, "w:gz") as tar:
                raw = json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8")
                info = tarfile.TarInfo(_MANIFEST)
                info.size, info.mode, info.mtime = len(raw), 0o600, int(datetime.now(UTC).timestamp())
                tar.addfile(info, io.BytesIO(raw))
                for (name, path), entry in zip(members, entries, strict=True):
                    info = tar.gettarinfo(str(path), arcname=name)
                    info.uid = info.gid = 0
                    info.uname = info.gname = ""
                    info.mode = cast(int, entry["mode"])
                    with path.open("rb") as fh:
                        tar.addfile(info, fh)
            partial.chmod(0o600)  # the archive holds the keys
            with partial.open("rb") as fh:
                os.fsync(fh.fileno())
            os.replace(partial, out)
        finally:
            partial.unlink(missing_ok=True)
    return counts, len(members)


def backup(container: Container, out: Path) -> BackupSummary:
    """Write an archive of the store, keys and data files to ``out`` (atomically: temp + rename).

    Raises InvalidInput (bad target), Conflict (``out`` exists), Unavailable (disk full).
    """
    out = Path(out)
    if out.exists():
        raise Conflict(f"{out} exists already; choose another file name")
    if not out.parent.is_dir():
        raise InvalidInput(f"folder {out.parent} does not exist")
    engine = container.engine
    db_file = _sqlite_path(engine)
    try:
        counts, n_members = _write_archive(container, out, db_file)
    except OSError as exc:  # disk full, file too large, permission: say so, leave nothing
        raise Unavailable(f"cannot write the backup {out}: {exc.strerror or exc}") from exc
    return BackupSummary(
        archive=str(out),
        backend=engine.dialect.name,
        members=n_members,
        tables=counts,
        bytes=out.stat().st_size,
        sha256=_digest_file(out),
    )


# --- restore ---------------------------------------------------------------------------
def _safe_name(name: str) -> bool:
    p = PurePosixPath(name)
    return bool(name) and not p.is_absolute() and ".." not in p.parts and p.parts[0] in {"db", "keys", "data"}


def _read_verified(archive: Path, stage: Path) -> _Manifest:
    """Steps 1 and 2: extract into ``stage`` only what the manifest names, hashes checked."""
    try:
        tar = tarfile.open(archive, "r:gz")  # noqa: SIM115 - closed by the with below
    except (OSError, tarfile.TarError) as exc:
        raise BackupIntegrity(f"{archive} is not a quanguard backup archive ({exc})") from exc
    with tar:
        try:
            first = tar.next()
            if first is None or first.name != _MANIFEST or not first.isfile() or first.size > _MAX_MANIFEST:
                raise BackupIntegrity(f"{archive}: the first member must be {_MANIFEST}")
            fh = tar.extractfile(first)
            manifest = json.loads(fh.read().decode("utf-8")) if fh else None
        except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
            raise BackupIntegrity(f"{archive}: unreadable manifest ({exc})") from exc
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise BackupIntegrity(f"{archive}: unknown backup format (expected {FORMAT})")
        try:
            suite = suite_for_hash(str(manifest.get("hash_alg", "sha256")))
        except CryptoSuiteError as exc:
            raise BackupIntegrity(f"{archive}: {exc}") from exc
        alg = suite.hash_alg
        expected = {m["name"]: m for m in manifest.get("members", [])}
        seen: set[str] = set()
        try:
            while (member := tar.next()) is not None:
                name = member.name
                if not member.isfile() or name not in expected or not _safe_name(name) or name in seen:
                    raise BackupIntegrity(f"{archive}: unexpected member {name!r}")
                target = stage / name
                target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                digest = suite.new_hash()
                src = tar.extractfile(member)
                if src is None:
                    raise BackupIntegrity(f"{archive}: unreadable member {name!r}")
                with target.open("wb") as dst:
                    for chunk in iter(partial(src.read, _CHUNK), b""):
                        digest.update(chunk)
                        dst.write(chunk)
                os.chmod(target, int(expected[name]["mode"]) & 0o777)
                if not _hmac_eq(digest.hexdigest(), str(expected[name].get(alg))):
                    raise BackupIntegrity(f"{archive}: member {name!r} does not match its {alg} in the manifest")
                seen.add(name)
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            raise BackupIntegrity(f"{archive}: damaged archive ({exc})") from exc
    missing = sorted(set(expected) - seen)
    if missing:
        raise BackupIntegrity(f"{archive}: members missing from the archive: {', '.join(missing[:5])}")
    return cast("_Manifest", manifest)  # the format and every member were checked above


def _hmac_eq(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _load_sqlite(source: Path, target: Path) -> None:
    src = sqlite3.connect(str(source))
    dst = sqlite3.connect(str(target), timeout=30)
    try:
        check = src.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise BackupIntegrity(f"the archived database fails its integrity check: {check}")
        src.backup(dst)  # one write transaction on the live file: all or nothing
    finally:
        dst.close()
        src.close()


def _load_tables(engine: Engine, stage: Path, manifest: _Manifest) -> dict[str, int]:
    order = json.loads((stage / "db" / "tables.json").read_text(encoding="utf-8"))
    by_name = {t.name: t for t in _tables(engine)}
    unknown = [n for n in order if n not in by_name]
    if unknown:
        raise InvalidInput(f"the archive has tables this version does not know: {', '.join(unknown)}")
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        for table in reversed(list(by_name.values())):
            conn.execute(delete(table))
        for name in order:
            table = by_name[name]
            cols = {c.name: c for c in table.columns}
            batch: list[dict[str, object]] = []
            n = 0
            with (stage / "db" / "tables" / f"{name}.jsonl").open(encoding="utf-8") as fh:
                for line in fh:
                    row = json.loads(line)
                    batch.append({k: _decode(cols[k], v) for k, v in row.items() if k in cols})
                    n += 1
                    if len(batch) >= 1000:
                        conn.execute(insert(table), batch)
                        batch = []
            if batch:
                conn.execute(insert(table), batch)
            counts[name] = n
        if engine.dialect.name == "postgresql":
            _reset_sequences(conn, list(by_name.values()))
    return counts


def _reset_sequences(conn: Connection, tables: list[Table]) -> None:
    for table in tables:
        for col in table.columns:
            if col.autoincrement is True or (col.primary_key and isinstance(col.type, types.Integer)):
                seq = conn.exec_driver_sql(
                    "SELECT pg_get_serial_sequence(%s, %s)", (table.name, col.name)
                ).scalar()
                if seq:
                    conn.exec_driver_sql(
                        f'SELECT setval(%s, COALESCE((SELECT max("{col.name}") FROM "{table.name}"), 0) + 1, false)',
                        (seq,),
                    )


def _swap_dir(staged: Path, target: Path) -> None:
    old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    if target.exists():
        os.replace(target, old)
    os.replace(staged, target)
    shutil.rmtree(old, ignore_errors=True)


def restore(container: Container, archive: Path, *, force: bool = False) -> RestoreSummary:
    """Replace the store, keys and data files by the archive's. See the module docstring.

    Raises BackupIntegrity (kind integrity), Conflict (non-empty store without ``force``),
    InvalidInput (archive from another backend or a newer schema).
    """
    archive = Path(archive)
    if not archive.is_file():
        raise InvalidInput(f"{archive} is not a file")
    settings = container.settings
    engine = container.engine
    db_file = _sqlite_path(engine)
    with tempfile.TemporaryDirectory(prefix=".qg-restore-", dir=settings.data_dir) as tmp:
        stage = Path(tmp)
        manifest = _read_verified(archive, stage)  # steps 1-2
        names = {m["name"] for m in manifest["members"]}
        known = set(_alembic_heads(engine))
        foreign = [h for h in manifest.get("alembic_heads", []) if h not in known]
        if foreign:
            raise InvalidInput(f"the archive was made by a newer schema (revisions {', '.join(foreign)})")
        has_sqlite = "db/sqlite.db" in names
        if has_sqlite and db_file is None:
            raise InvalidInput("this archive holds a SQLite store; restore it into a SQLite store")
        if not has_sqlite and "db/tables.json" not in names:
            raise BackupIntegrity(f"{archive}: the archive holds no database")
        if not force and not store_is_empty(container):  # step 3
            raise Conflict("the store is not empty; pass --force to replace it with the archive")
        # Step 4: stage the key folder beside its target (same file system: rename is atomic).
        key_dir = settings.key_dir
        key_dir.parent.mkdir(parents=True, exist_ok=True)
        staged_keys = key_dir.with_name(f".{key_dir.name}.new-{uuid.uuid4().hex[:8]}")
        if (stage / "keys").is_dir():
            shutil.copytree(stage / "keys", staged_keys)
        else:
            staged_keys.mkdir()
        staged_keys.chmod(0o700)
        n_keys = sum(1 for p in staged_keys.rglob("*") if p.is_file())
        try:
            if has_sqlite:
                assert db_file is not None
                _load_sqlite(stage / "db" / "sqlite.db", db_file)
                counts = dict(manifest.get("tables", {}))
            else:
                counts = _load_tables(engine, stage, manifest)
        except BaseException:
            shutil.rmtree(staged_keys, ignore_errors=True)
            raise
        _swap_dir(staged_keys, key_dir)
        n_data = 0
        data_src = stage / "data"
        if data_src.is_dir():
            for path in sorted(p for p in data_src.rglob("*") if p.is_file()):
                rel = path.relative_to(data_src)
                target = settings.data_dir / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp_target = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
                shutil.copy2(path, tmp_target)
                os.replace(tmp_target, target)
                n_data += 1
    return RestoreSummary(
        archive=str(archive),
        backend=engine.dialect.name,
        tables=counts,
        keys=n_keys,
        data_files=n_data,
    )


def authorize_backup(container: Container, actor: Principal, action: str) -> Decision:
    """Ask the gate (policy action ``backup``) before a backup or a restore; a refusal
    is recorded under ``action`` (``backup`` / ``restore``) and raised as Forbidden."""
    return authorize(container, actor, "backup", audit_action=action)


def record(container: Container, actor: Principal, action: str, labels: dict[str, str],
           decision: Decision | None = None) -> None:
    """Write the backup/restore event to the trail (a failure to write fails the command)."""
    with container.unit_of_work() as session:
        container.audit.record(session, actor=actor, action=action, decision=decision,
                               labels=labels)

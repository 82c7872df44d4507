"""Keys at rest: the start-up check of the key folder and the master-key rotation.

``check_key_files(key_dir)`` — ``serve`` refuses to start while any file in the key folder
is readable or writable by group or others (a key that others could read may already be
copied: fix the mode, and rotate), or while a rotation was interrupted.

``rotate_master(container, principal)`` — a new exchange master key; every dataset's data
key is re-wrapped under it in one transaction, which also records the rotation. Steps:

1. the pending new key is written to ``exchange-master.key.new`` (0600, synced);
2. the subject-hash root is split off the master on the first rotation
   (``exchange-subject.key``), so stored subject hashes (consent withdrawals) still match;
3. one transaction re-wraps every data key and appends the ``key_rotate_master`` event;
4. after the commit, the pending file replaces the master key file (atomic rename).

When the deployment's crypto suite (``QUANGUARD_CRYPTO``) differs from the suite the
datasets were sealed under, step 3 re-encrypts them instead (``reseal_datasets``: each
dataset's rows under a fresh SM4-GCM or AES-GCM data key wrapped by the new master key);
the old blob files are removed after the commit.

A crash between 3 and 4 leaves the pending file; the next ``rotate-master`` finds which key
opens the stored data keys and completes (or discards) the interrupted rotation first.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from exchange.catalog import reseal_datasets, rewrap_keys
from exchange.crypto import MASTER_KEY_FILE, SUBJECT_KEY_FILE, MasterKey, sealed_suite
from exchange.errors import IntegrityFailure
from exchange.tables import datasets
from quanguard.errors import Conflict, InvalidInput
from quanguard.gate import RequestContext, authorize, origin

if TYPE_CHECKING:
    from gmcrypto import Suite
    from quanguard.auth import Principal
    from quanguard.container import Container

__all__ = ["KeyFilesExposed", "RotationPending", "check_key_files", "rotate_master"]

PENDING_SUFFIX = ".new"
_log = logging.getLogger("quanguard.keys")


class KeyFilesExposed(InvalidInput):
    """Key files are readable or writable by group or others (exit 2)."""


class RotationPending(Conflict):
    """A master-key rotation was interrupted; finish it before serving (exit 6)."""


def _pending(key_dir: Path) -> Path:
    return key_dir / (MASTER_KEY_FILE + PENDING_SUFFIX)


def check_key_files(key_dir: Path) -> None:
    """Raise KeyFilesExposed naming every key file with group/other permission bits, or
    RotationPending when an interrupted rotation left its pending key behind."""
    key_dir = Path(key_dir)
    if not key_dir.is_dir():
        return
    exposed = []
    for path in sorted(key_dir.rglob("*")):
        mode = path.lstat().st_mode
        if stat.S_ISREG(mode) and mode & 0o077:
            exposed.append(f"{path.name} ({stat.filemode(mode)})")
    if exposed:
        raise KeyFilesExposed(
            f"key files in {key_dir} are readable by group or others: {', '.join(exposed)}; "
            f"run `chmod 600 {key_dir}/*` and consider `quanguard keys rotate-master` "
            "(a key others could read may have been copied)",
            files=exposed,
        )
    if _pending(key_dir).exists():
        raise RotationPending(
            f"a master-key rotation was interrupted ({_pending(key_dir).name} exists); "
            "run `quanguard keys rotate-master` to complete it before serving"
        )


def key_id(secret: bytes) -> str:
    """A public name of a key (never the key): 16 hex digits of a domain-separated hash."""
    return hashlib.sha256(b"quanguard master key id\x00" + secret).hexdigest()[:16]


def _write_secret(path: Path, secret: bytes) -> None:
    """Write a key file 0600 (never readable by others, even briefly) and sync it."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, secret)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(path, 0o600)


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _opens_all(container: Container, key: MasterKey) -> bool:
    with container.session() as session:
        rows = session.execute(select(datasets.c.name, datasets.c.wrapped_key)).all()
    try:
        for name, wrapped in rows:
            # each wrap opens under the suite it names (a suite switch may be in flight)
            MasterKey(key.secret, key.subject_root, sealed_suite(bytes(wrapped))).unwrap(
                bytes(wrapped), name)
    except IntegrityFailure:
        return False
    return True


def _stored_suite(container: Container) -> Suite | None:
    """The one suite every stored data key is wrapped under (None when there are none)."""
    with container.session() as session:
        wraps = session.execute(select(datasets.c.wrapped_key)).scalars().all()
    suites = {sealed_suite(bytes(w)).name: sealed_suite(bytes(w)) for w in wraps}
    if len(suites) > 1:
        raise IntegrityFailure(f"data keys are wrapped under several suites ({' '.join(suites)})")
    return next(iter(suites.values()), None)


def _finish_interrupted(container: Container, key_dir: Path) -> str | None:
    """Complete or discard a rotation a crash interrupted; returns what was done."""
    pending = _pending(key_dir)
    if not pending.exists():
        return None
    current = MasterKey.from_dir(key_dir)
    candidate = MasterKey(pending.read_bytes(), current.subject_root)
    if _opens_all(container, current):
        pending.unlink()  # the transaction never committed: the old key is still the key
        return "discarded"
    if _opens_all(container, candidate):
        os.replace(pending, key_dir / MASTER_KEY_FILE)
        _sync_dir(key_dir)
        return "completed"
    raise IntegrityFailure(
        "stored data keys open with neither the master key nor the pending one; "
        "restore the key folder from the backup taken with the database"
    )


@dataclass(frozen=True)
class Rotation:
    datasets: int
    old_key_id: str
    new_key_id: str
    recovered: str | None

    def to_dict(self) -> dict[str, object]:
        return {"datasets": self.datasets, "old_key_id": self.old_key_id,
                "new_key_id": self.new_key_id, "recovered_interrupted": self.recovered}


def rotate_master(container: Container, principal: Principal, ctx: RequestContext | None = None
                  ) -> Rotation:
    """Re-wrap every dataset key under a new master key; audited (``key_rotate_master``).

    Raises Forbidden (recorded by the gate) unless policy allows ``key_admin``; raises
    IntegrityFailure (nothing changed) when a stored data key does not open."""
    authorize(container, principal, "key_admin", None, ctx, audit_action="key_rotate_master")
    key_dir = Path(container.settings.key_dir)
    recovered = _finish_interrupted(container, key_dir)
    target = container.settings.suite
    stored = _stored_suite(container) or target
    old = MasterKey.from_dir(key_dir, stored)
    # 2. the subject-hash root keeps the value the stored hashes were made with
    if old.subject_root is None:
        _write_secret(key_dir / SUBJECT_KEY_FILE, old.secret)
        old = MasterKey(old.secret, old.secret, stored)
    # 1. the pending key, on disk before any data key is wrapped with it
    new = MasterKey(os.urandom(32), old.subject_root, target)
    stale: list[Path] = []
    pending = _pending(key_dir)
    _write_secret(pending, new.secret)
    _sync_dir(key_dir)
    # 3. one transaction: every data key re-wrapped, and the record of it
    try:
        with container.unit_of_work() as session:
            if stored.name == target.name:
                count = rewrap_keys(session, old, new)
            else:  # a suite switch: the rows are re-encrypted under the new suite too
                stale = reseal_datasets(session, container.settings.data_dir / "exchange",
                                        old, new)
                count = len(stale)
            container.audit.record(
                session, actor=principal, action="key_rotate_master",
                **origin(ctx),
                labels={"datasets": str(count), "old_key_id": key_id(old.secret),
                        "new_key_id": key_id(new.secret),
                        "recovered_interrupted": recovered or "",
                        "suite": target.name, "from_suite": stored.name},
            )
    except BaseException:
        # Usually nothing committed and the pending key is discarded; if the commit did
        # land (an error after it), the rotation is completed instead. When neither can
        # be told, the pending file stays and `serve` refuses until this is resolved.
        try:
            _finish_interrupted(container, key_dir)
        except Exception:  # noqa: BLE001 - the original error is the one to report
            _log.exception("master-key rotation left %s; serve refuses until it is resolved",
                           pending.name)
        raise
    # 4. the new key becomes the key
    os.replace(pending, key_dir / MASTER_KEY_FILE)
    _sync_dir(key_dir)
    for path in stale:  # the blobs of the old suite, superseded by the committed ones
        path.unlink(missing_ok=True)
    container.__dict__.pop("exchange", None)  # a built exchange holds the old key in memory
    return Rotation(count, key_id(old.secret), key_id(new.secret), recovered)

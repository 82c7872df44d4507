"""Which organisation owns a dataset: the exchange catalog's ``owner_org``.

Used by the alert rules' ``exclude_own_org`` (a provider reading its own data raises no
first-access or off-hours alert). Looked up in the caller's transaction; a build without
the exchange tables, or a dataset not in the catalog, has no known owner (-> None), and
the alert rules then treat the access as someone else's data.

Every audited request asks, so what cannot change is kept per database for the process:
a catalog entry's owner (datasets are registered once, never renamed, re-owned or
deleted) and the presence of the catalog table, both once the transaction that read them
has committed (an owner read inside a transaction that rolls back, e.g. of a
registration that failed, is never kept). "Not in the catalog" and "no catalog
table" may stop being true at any time (a registration by any process, a migration), so
they are kept only for the caller's transaction.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

__all__ = ["catalog_owner"]

_MAX_OWNERS = 100_000


class _Known:
    """One database's lasting answers."""

    def __init__(self) -> None:
        self.owners: dict[str, str] = {}
        self.table = False


_KNOWN: weakref.WeakKeyDictionary[object, _Known] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _known(bind: object) -> _Known:
    with _LOCK:
        known = _KNOWN.get(bind)
        if known is None:
            known = _KNOWN[bind] = _Known()
        return known


def catalog_owner(session: Session, dataset: str) -> str | None:
    from exchange.tables import datasets

    known = _known(session.get_bind())
    owner_known = known.owners.get(dataset)
    if owner_known is not None:
        return owner_known
    cache: dict[str, str | None] = session.info.setdefault("quanguard_dataset_owner", {})
    if dataset in cache:
        return cache[dataset]
    present = known.table or session.info.get("quanguard_has_catalog")
    if present is None:
        present = sa.inspect(session.connection()).has_table(datasets.name)
        session.info["quanguard_has_catalog"] = present
    owner: str | None = None
    if present:
        owner = session.execute(sa.select(datasets.c.owner_org)
                                .where(datasets.c.name == dataset)).scalar()
    cache[dataset] = None if owner is None else str(owner)
    if owner is not None or (present and not known.table):
        _keep_on_commit(session, known, dataset, cache[dataset], bool(present))
    return cache[dataset]


def _keep_on_commit(session: Session, known: _Known, dataset: str, owner: str | None,
                    table: bool) -> None:
    pending: dict[str, Any] | None = session.info.get("quanguard_owner_pending")
    if pending is None:
        pending = session.info["quanguard_owner_pending"] = {"owners": {}, "table": False}

        def commit(sess: Session) -> None:
            held = sess.info.pop("quanguard_owner_pending", None)
            if not held:
                return
            with _LOCK:
                known.table = known.table or held["table"]
                if len(known.owners) + len(held["owners"]) > _MAX_OWNERS:
                    known.owners.clear()
                known.owners.update(held["owners"])

        def rollback(sess: Session) -> None:
            sess.info.pop("quanguard_owner_pending", None)

        sa_event.listen(session, "after_commit", commit, once=True)
        sa_event.listen(session, "after_rollback", rollback, once=True)
    pending["table"] = pending["table"] or table
    if owner is not None:
        pending["owners"][dataset] = owner

"""Consent registry (个人授权): subject identifiers kept only as keyed hashes.

Each (dataset, subject, purpose) has a state ``granted`` or ``withdrawn``. Computations
for a purpose drop the rows of subjects who withdrew that purpose (or ``*``, all
purposes). Identifiers are hashed with a per-dataset key derived from the master key, so
the registry alone does not reveal who is in it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import pyarrow as pa
from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.crypto import SubjectHasher, keyed_hash
from exchange.errors import InvalidQuery
from exchange.tables import consent

STATES = ("granted", "withdrawn")
ALL_PURPOSES = "*"


def _record(hash_key: bytes | SubjectHasher, subject: str) -> str:
    return hash_key.record(subject) if isinstance(hash_key, SubjectHasher) else keyed_hash(hash_key, subject)


def _listed(hash_key: bytes | SubjectHasher, subject: str, hashes: set[str]) -> bool:
    # Under a SubjectHasher every suite's hash is tried: a withdrawal recorded before a
    # crypto-suite switch must still exclude the subject (fail closed).
    if isinstance(hash_key, SubjectHasher):
        return any(h in hashes for h in hash_key.lookups(subject))
    return keyed_hash(hash_key, subject) in hashes


def set_consent(
    session: Session, *, dataset: str, hash_key: bytes | SubjectHasher, subjects: Iterable[str], purpose: str,
    state: str, now: datetime,
) -> int:
    """Record ``state`` for each subject and purpose; returns how many were written."""
    if state not in STATES:
        raise InvalidQuery(f"consent state must be one of {' '.join(STATES)}")
    if not purpose:
        raise InvalidQuery("consent needs a purpose ('*' for all purposes)")
    n = 0
    for subject in dict.fromkeys(s.strip() for s in subjects if s.strip()):
        h = _record(hash_key, subject)
        key = (consent.c.dataset == dataset, consent.c.subject_hash == h, consent.c.purpose == purpose)
        if session.execute(select(consent.c.state).where(*key)).first():
            session.execute(consent.update().where(*key).values(state=state, updated_at=now))
        else:
            session.execute(consent.insert().values(
                dataset=dataset, subject_hash=h, purpose=purpose, state=state, updated_at=now))
        n += 1
    return n


def withdrawn_hashes(session: Session, *, dataset: str, purpose: str | None) -> set[str]:
    """Hashes of subjects who withdrew ``purpose`` or all purposes."""
    purposes = [ALL_PURPOSES] + ([purpose] if purpose else [])
    rows = session.execute(
        select(consent.c.subject_hash).where(
            consent.c.dataset == dataset, consent.c.state == "withdrawn",
            consent.c.purpose.in_(purposes),
        )
    )
    return {r[0] for r in rows}


def exclude_withdrawn(table: pa.Table, *, key_column: str | None,
                      hash_key: bytes | SubjectHasher,
                      withdrawn: set[str]) -> pa.Table:
    """Drop rows whose subject (value of ``key_column``) is in ``withdrawn``."""
    if not withdrawn or key_column is None:
        return table
    values = table.column(key_column).to_pylist()
    keep = [v is None or not _listed(hash_key, str(v), withdrawn) for v in values]
    return table.filter(pa.array(keep, type=pa.bool_()))


def filter_ids(ids: Iterable[str], *, hash_key: bytes | SubjectHasher,
               withdrawn: set[str]) -> list[str]:
    """The identifiers whose subject has not withdrawn (for PSI server sets)."""
    if not withdrawn:
        return list(ids)
    return [i for i in ids if not _listed(hash_key, i, withdrawn)]


__all__ = ["ALL_PURPOSES", "STATES", "exclude_withdrawn", "filter_ids", "set_consent",
           "withdrawn_hashes"]

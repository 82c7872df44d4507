"""Consent registry (个人授权): subject identifiers kept only as keyed hashes.

Each (dataset, subject, purpose) has a state ``granted`` or ``withdrawn``. Computations
for a purpose drop the rows of subjects who withdrew that purpose (or ``*``, all
purposes); a computation that names no purpose (or a blank one, or ``*``) drops the rows
of every subject who withdrew any purpose. Identifiers are hashed with a per-dataset key
derived from the master key, so the registry alone does not reveal who is in it.

Two written forms make the comparisons hold whatever the spelling:

* purposes are recorded and looked up in :func:`exchange.purposes.normalise_purpose` form
  (``营销 ``, ``营\\u200b销`` and ``营销`` are one purpose; ``* `` is all purposes);
* subjects are hashed in :func:`subject_form` (``exchange.family.normalise`` of the value
  without invisible characters), on the registry side and on the dataset side alike.

Records written before these forms (the purpose as typed, the subject ``strip()``-ed) still
count: the lookup normalises stored purposes and also tries a value's ``strip()``-ed hash,
and a later ``set_consent`` for the same subject and purpose updates them too.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import pyarrow as pa
from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.crypto import SubjectHasher, keyed_hash
from exchange.errors import InvalidQuery
from exchange.family import normalise
from exchange.purposes import ALL_PURPOSES, normalise_purpose, without_invisibles
from exchange.tables import consent

STATES = ("granted", "withdrawn")
_PURPOSE_MAX: int = getattr(consent.c.purpose.type, "length", None) or 200  # the column's width


def subject_form(value: str) -> str:
    """The form a subject is hashed in: two spellings of one identifier (``...000x`` and
    ``...000X``, ``370102-19500101-0003``, full-width digits, a zero-width space inside)
    share it. Stored hashes depend on it: changing it voids recorded withdrawals."""
    return normalise(without_invisibles(value))


def _record(hash_key: bytes | SubjectHasher, subject: str) -> str:
    return hash_key.record(subject) if isinstance(hash_key, SubjectHasher) else keyed_hash(hash_key, subject)


def _hashes(hash_key: bytes | SubjectHasher, value: str) -> set[str]:
    """Every hash a withdrawal of ``value`` may be stored under: its normal form and the
    ``strip()``-ed form earlier records used, under every suite (a withdrawal recorded
    before a crypto-suite switch must still exclude the subject: fail closed)."""
    forms = {subject_form(value), value.strip()}
    if isinstance(hash_key, SubjectHasher):
        return {h for form in forms for h in hash_key.lookups(form)}
    return {keyed_hash(hash_key, form) for form in forms}


def _listed(hash_key: bytes | SubjectHasher, subject: str, hashes: set[str]) -> bool:
    return not hashes.isdisjoint(_hashes(hash_key, subject))


def _purpose(purpose: str) -> str:
    wanted = normalise_purpose(purpose)
    if wanted is None:
        raise InvalidQuery("consent needs a purpose ('*' for all purposes)")
    if len(wanted) > _PURPOSE_MAX:
        raise InvalidQuery(f"a consent purpose is at most {_PURPOSE_MAX} characters "
                           f"(this one is {len(wanted):,} once normalised)")
    return wanted


def _meaning(stored: str) -> str:
    """What a stored purpose means. Older rows hold the purpose as typed; one that is blank
    once normalised (``" "`` was accepted) is taken as all purposes: fail closed."""
    return normalise_purpose(stored) or ALL_PURPOSES


def _stored_purposes(session: Session, dataset: str, *, withdrawn: bool = False) -> list[str]:
    where = [consent.c.dataset == dataset]
    if withdrawn:
        where.append(consent.c.state == "withdrawn")
    return list(session.execute(select(consent.c.purpose).where(*where).distinct()).scalars())


def set_consent(
    session: Session, *, dataset: str, hash_key: bytes | SubjectHasher, subjects: Iterable[str], purpose: str,
    state: str, now: datetime,
) -> int:
    """Record ``state`` for each subject and purpose; returns how many subjects (distinct
    in :func:`subject_form`) were written.

    The purpose is stored normalised; rows recorded earlier for the same subject and
    purpose in another spelling are set to ``state`` as well (a grant lifts an old
    withdrawal). Raises InvalidQuery for an unknown state, a blank or overlong purpose."""
    if state not in STATES:
        raise InvalidQuery(f"consent state must be one of {' '.join(STATES)}")
    wanted = _purpose(purpose)
    spellings = {p for p in _stored_purposes(session, dataset) if _meaning(p) == wanted} | {wanted}
    written: dict[str, set[str]] = {}
    for subject in subjects:
        form = subject_form(subject)
        if form:
            written.setdefault(form, set()).add(subject)
    for form, spelled in written.items():
        h = _record(hash_key, form)
        earlier: set[str] = set()
        for s in spelled:
            earlier |= _hashes(hash_key, s)
        match = (consent.c.dataset == dataset, consent.c.subject_hash.in_(sorted(earlier)),
                 consent.c.purpose.in_(sorted(spellings)))
        session.execute(consent.update().where(*match).values(state=state, updated_at=now))
        key = (consent.c.dataset == dataset, consent.c.subject_hash == h, consent.c.purpose == wanted)
        if not session.execute(select(consent.c.state).where(*key)).first():
            session.execute(consent.insert().values(
                dataset=dataset, subject_hash=h, purpose=wanted, state=state, updated_at=now))
    return len(written)


def withdrawn_hashes(session: Session, *, dataset: str, purpose: str | None) -> set[str]:
    """Hashes of subjects who withdrew ``purpose`` or all purposes. A ``purpose`` that is
    None, blank or ``*`` asks for any purpose: every withdrawal of the dataset counts."""
    wanted = normalise_purpose(purpose)
    where = [consent.c.dataset == dataset, consent.c.state == "withdrawn"]
    if wanted is not None and wanted != ALL_PURPOSES:
        stored = _stored_purposes(session, dataset, withdrawn=True)
        where.append(consent.c.purpose.in_(
            sorted(p for p in stored if _meaning(p) in (ALL_PURPOSES, wanted))))
    return set(session.execute(select(consent.c.subject_hash).where(*where)).scalars())


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
           "subject_form", "withdrawn_hashes"]

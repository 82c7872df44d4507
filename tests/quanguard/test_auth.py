"""API keys: shown once, stored hashed, revocable, expiring — on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from quanguard.auth import KEY_ROLES, authenticate, create_key, list_keys, revoke_key
from quanguard.container import Container
from quanguard.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from quanguard.models import PrincipalRow


@pytest.mark.parametrize("role", KEY_ROLES)
def test_key_roundtrip_every_role(any_container: Container, role: str) -> None:
    with any_container.session() as s, s.begin():
        issued = create_key(s, role=role, org="市人社局", name=f"k-{role}")
    with any_container.session() as s:
        who = authenticate(s, issued.key)
        stored = s.scalar(select(PrincipalRow).where(PrincipalRow.name == f"k-{role}"))
    assert who == issued.principal
    assert who.role == role and who.org == "市人社局"
    # Only the digest is stored, never the key.
    assert stored is not None
    assert stored.key_hash == hashlib.sha256(issued.key.encode()).hexdigest()
    assert issued.key not in repr(stored.__dict__)


def test_revoked_and_expired_keys_fail(any_container: Container) -> None:
    with any_container.session() as s, s.begin():
        a = create_key(s, role="consumer", org="某银行", name="a")
        b = create_key(s, role="consumer", org="某银行", name="b", expires_at=datetime.now(UTC) - timedelta(seconds=1))
    with any_container.session() as s, s.begin():
        revoke_key(s, "a")
    with any_container.session() as s:
        with pytest.raises(Unauthenticated, match="revoked"):
            authenticate(s, a.key)
        with pytest.raises(Unauthenticated, match="expired"):
            authenticate(s, b.key)
        statuses = {k.principal.name: k.status for k in list_keys(s)}
    assert statuses == {"a": "revoked", "b": "expired"}


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"role": "root", "org": "x", "name": "n"}, InvalidInput),
        ({"role": "admin", "org": " ", "name": "n"}, InvalidInput),
        ({"role": "admin", "org": "x", "name": ""}, InvalidInput),
        ({"role": "admin", "org": "x", "name": "n" * 129}, InvalidInput),
    ],
)
def test_bad_key_requests(container: Container, kwargs: dict[str, Any], error: type[Exception]) -> None:
    with container.session() as s, s.begin(), pytest.raises(error):
        create_key(s, **kwargs)


def test_duplicate_name_and_unknown_revoke(container: Container) -> None:
    with container.session() as s, s.begin():
        create_key(s, role="admin", org="x", name="dup")
    with container.session() as s, s.begin(), pytest.raises(Conflict):
        create_key(s, role="admin", org="x", name="dup")
    with container.session() as s, s.begin():
        with pytest.raises(NotFound):
            revoke_key(s, "nobody")
        revoke_key(s, "dup")
    with container.session() as s, s.begin(), pytest.raises(Conflict):
        revoke_key(s, "dup")


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=120))
def test_arbitrary_strings_never_authenticate(container: Container, junk: str) -> None:
    with container.session() as s, pytest.raises(Unauthenticated) as info:
        authenticate(s, junk)
    if junk:
        assert junk not in str(info.value) or len(junk) < 3


def test_tampered_key_fails(container: Container) -> None:
    with container.session() as s, s.begin():
        issued = create_key(s, role="auditor", org="x", name="t")
    flipped = issued.key[:-1] + ("A" if issued.key[-1] != "A" else "B")
    with container.session() as s:
        with pytest.raises(Unauthenticated):
            authenticate(s, flipped)
        assert authenticate(s, issued.key).name == "t"


def test_authentication_does_not_wait_behind_a_writer(container: Container) -> None:
    """SQLite: a long write transaction must not stall every caller's key check."""
    import time

    from tests.conftest import write_held_elsewhere

    with container.session() as s, s.begin():
        issued = create_key(s, role="auditor", org="x", name="reader")
    with write_held_elsewhere(container, "UPDATE service_state SET value = value WHERE 1 = 0"):
        started = time.monotonic()
        with container.read_session() as s:
            assert authenticate(s, issued.key).name == "reader"
        assert time.monotonic() - started < 2.0


def test_gm_key_hashes_are_sm3_and_name_their_algorithm(any_container: Container) -> None:
    """Under gm a key's stored hash is SM3 (prefixed ``sm3:``); keys made under intl (bare
    SHA-256 hex, as before the suites) keep working beside them, and neither passes for
    the other."""
    from gmcrypto import GM

    with any_container.session() as s, s.begin():
        old = create_key(s, role="consumer", org="某银行", name="intl-key")
        new = create_key(s, role="consumer", org="某银行", name="gm-key", suite=GM)
    with any_container.session() as s:
        stored = {r.name: r.key_hash for r in s.scalars(select(PrincipalRow))}
        assert stored["gm-key"] == "sm3:" + GM.hexdigest(new.key.encode())
        assert stored["intl-key"] == hashlib.sha256(old.key.encode()).hexdigest()
        assert authenticate(s, new.key) == new.principal
        assert authenticate(s, old.key) == old.principal
        with pytest.raises(Unauthenticated):
            authenticate(s, new.key[:-1] + ("A" if new.key[-1] != "A" else "B"))

"""What every command shares: the local container and the caller (output: ``quanguard.cli.output``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from quanguard.auth import LOCAL_OPERATOR, Principal, authenticate
from quanguard.config import load_settings
from quanguard.container import Container, build_container
from quanguard.errors import InvalidInput

__all__ = [
    "cli_principal",
    "open_container",
    "use_container",
]


def open_container(**overrides: Any) -> Container:
    """The local service state: settings from the environment, store created and migrated."""
    try:
        settings = load_settings(**overrides)
    except Exception as exc:  # pydantic ValidationError: a wrong QUANGUARD_* value
        raise InvalidInput(f"bad configuration: {_first_line(exc)}") from exc
    return build_container(settings)


@contextmanager
def use_container(**overrides: Any) -> Iterator[Container]:
    container = open_container(**overrides)
    try:
        yield container
    finally:
        container.close()


def cli_principal(container: Container) -> Principal:
    """Who runs a local command: the holder of ``QUANGUARD_API_KEY``, or else the local
    operator — role ``operator``, decided by its rules in ``policies/roles.yaml`` like any
    principal (no command or use case treats it specially)."""
    key = os.environ.get("QUANGUARD_API_KEY")
    if not key:
        return LOCAL_OPERATOR
    with container.session() as session:
        return authenticate(session, key)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return " ".join(line.strip() for line in text[:3]) if text else type(exc).__name__

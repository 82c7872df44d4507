"""One error vocabulary: every ``kind`` an error class of any package carries is a
declared :data:`quanguard.errors.ErrorKind` with a row in the error table."""

from __future__ import annotations

import importlib
import inspect
from typing import get_args

import pytest

from quanguard.errors import ERROR_TABLE, ErrorKind, ServiceError, classify

MODULES = ["quanguard.errors", "quanguard.policy.errors", "monitor.errors", "desensitize.errors",
           "watermark.errors", "exchange.errors", "gmcrypto.errors"]


def test_the_table_has_exactly_the_declared_kinds() -> None:
    assert set(ERROR_TABLE) == set(get_args(ErrorKind))


@pytest.mark.parametrize("module", MODULES)
def test_every_error_class_carries_a_known_kind(module: str) -> None:
    classes = [c for _, c in inspect.getmembers(importlib.import_module(module), inspect.isclass)
               if issubclass(c, Exception) and c.__module__ == module]
    assert classes, f"{module} defines no error classes"
    unknown = {c.__name__: getattr(c, "kind", None) for c in classes
               if getattr(c, "kind", None) not in get_args(ErrorKind)}
    assert unknown == {}


def test_an_unknown_kind_is_a_bug_not_a_status() -> None:
    class Odd(ServiceError):
        kind = "teapot"  # type: ignore[assignment]

    assert classify(Odd("x")) is None
    assert classify(ServiceError("x")) is not None

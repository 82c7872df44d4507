"""Errors of the privacy exchange.

Every class carries ``kind`` (see CONTRIBUTING.md); the service maps kinds to HTTP
statuses and exit codes at its border.

    ExchangeError                      kind=invalid
    ├── InvalidQuery                   kind=invalid    a malformed or disallowed query
    ├── InvalidDataset                 kind=invalid    an unreadable or ill-described dataset
    ├── DatasetNotFound                kind=not_found
    ├── JobNotFound                    kind=not_found  (also for jobs of other tenants)
    ├── DatasetExists                  kind=conflict
    ├── JobStateError                  kind=conflict   approving a finished job, ...
    ├── Refused                        kind=forbidden  policy or privacy guard said no
    │   └── BudgetExhausted            kind=forbidden  the ε/δ budget would be exceeded
    ├── KeyFileError                   kind=unavailable master/signing key unusable
    └── IntegrityFailure               kind=integrity  decryption or receipt check failed
        └── ReceiptInvalid             kind=integrity
"""

from __future__ import annotations


class ExchangeError(Exception):
    """Base class of every exchange error."""

    kind = "invalid"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidQuery(ExchangeError):
    kind = "invalid"


class InvalidDataset(ExchangeError):
    kind = "invalid"


class DatasetNotFound(ExchangeError):
    kind = "not_found"

    def __init__(self, name: str) -> None:
        super().__init__(f"dataset {name!r} is not in the exchange catalog")
        self.name = name


class JobNotFound(ExchangeError):
    kind = "not_found"

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id!r} not found")
        self.job_id = job_id


class DatasetExists(ExchangeError):
    kind = "conflict"

    def __init__(self, name: str) -> None:
        super().__init__(f"dataset {name!r} is already registered")
        self.name = name


class JobStateError(ExchangeError):
    kind = "conflict"


class Refused(ExchangeError):
    """Policy or a privacy guard refused the request; ``reason`` says why."""

    kind = "forbidden"

    def __init__(self, reason: str, *, rule_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.rule_id = rule_id


class BudgetExhausted(Refused):
    kind = "forbidden"

    def __init__(self, *, consumer: str, dataset: str, requested: float, left: float) -> None:
        super().__init__(
            f"privacy budget exhausted for {consumer!r} on {dataset!r}: "
            f"requested ε={requested:g}, left ε={left:g}"
        )
        self.consumer = consumer
        self.dataset = dataset
        self.requested = requested
        self.left = left


class KeyFileError(ExchangeError):
    kind = "unavailable"


class IntegrityFailure(ExchangeError):
    kind = "integrity"


class ReceiptInvalid(IntegrityFailure):
    kind = "integrity"

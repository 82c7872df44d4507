"""Errors of the desensitize package: one tree, each class carries a ``kind``.

    DesensitizeError (kind ``invalid``)
    ├── ScanInputError (kind ``invalid``)      bad input to a scanner: binary text, empty table
    ├── ScanTooLarge (kind ``too_large``)      a text or line beyond the scanner's limit
    └── RecognizerDataError (kind ``invalid``) a recognizer data table is missing or malformed

The ``kind`` values are those of CONTRIBUTING.md; the service maps them to an HTTP
status and a CLI exit code.  Messages name the offending input so a user can act.
"""

from __future__ import annotations


class DesensitizeError(Exception):
    """Base of every error raised by :mod:`desensitize`."""

    kind = "invalid"


class ScanInputError(DesensitizeError):
    """The input cannot be scanned (binary data, no rows, unreadable text)."""

    kind = "invalid"


class ScanTooLarge(DesensitizeError):
    """A text or a single line is larger than the scanner accepts."""

    kind = "too_large"

    def __init__(self, message: str, *, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class RecognizerDataError(DesensitizeError):
    """A data table under ``desensitize/data/`` is missing or malformed."""

    kind = "invalid"


# --- table I/O and masking -----------------------------------------------------
#
#    DesensitizeError
#    ├── TableError (kind ``invalid``)          unreadable/unwritable table file, bad output path
#    │   └── OutputUnavailable (kind ``unavailable``) the output's disk is full or failing
#    ├── TableTooLarge (kind ``too_large``)     zip-bomb-like XLSX, over-long input
#    ├── ProfileError (kind ``invalid``)        policies/masking.yaml problem (.path, .line)
#    ├── UnknownProfile (kind ``not_found``)    a profile name that is not defined
#    ├── PlanError (kind ``invalid``)           a plan naming a missing column, bad plan file
#    ├── OperatorError (kind ``invalid``)       a value an operator cannot handle
#    │   └── DomainTooSmall (kind ``invalid``)  FF1 domain under 1,000,000 values
#    └── KeyMaterialError (kind ``invalid``)    missing key, wrong key length


class TableError(DesensitizeError):
    """A table cannot be read or written (format, encoding, shape, corruption)."""

    kind = "invalid"


class OutputUnavailable(TableError):
    """An output could not be written for want of room or a working disk (no space left,
    quota, file size limit, I/O error): nothing was written; the same command may succeed
    once space is freed."""

    kind = "unavailable"


class TableTooLarge(DesensitizeError):
    """A table declares a size beyond what the reader accepts (zip bomb guard)."""

    kind = "too_large"


class ProfileError(DesensitizeError):
    """A masking-profile file is invalid; ``path:line: message``."""

    kind = "invalid"

    def __init__(self, message: str, *, path: str = "", line: int | None = None) -> None:
        where = f"{path}:{line}: " if path and line else (f"{path}: " if path else "")
        super().__init__(f"{where}{message}")
        self.path = path
        self.line = line
        self.message = message


class UnknownProfile(DesensitizeError):
    """The requested masking profile is not defined."""

    kind = "not_found"


class PlanError(DesensitizeError):
    """A masking plan is inconsistent with the table (missing column, bad operator)."""

    kind = "invalid"


class OperatorError(DesensitizeError):
    """An operator got a parameter or a value it cannot handle."""

    kind = "invalid"


class DomainTooSmall(OperatorError):
    """FF1 refuses a domain of fewer than 1,000,000 values (NIST SP 800-38G rev.1)."""

    kind = "invalid"


class KeyMaterialError(DesensitizeError):
    """Key material is missing, unreadable or of the wrong length (never shows the key)."""

    kind = "invalid"

"""Errors of the crypto-suite layer.

    CryptoSuiteError (kind="crypto_suite")
    ├── UnknownSuite      a suite or algorithm name that is not defined here
    ├── SuiteMismatch     data made under one suite met a caller of another (never mixed)
    └── KeyError_         a key file that cannot be read or has the wrong shape
"""

from __future__ import annotations


class CryptoSuiteError(Exception):
    kind = "crypto_suite"


class UnknownSuite(CryptoSuiteError):
    kind = "unknown_suite"


class SuiteMismatch(CryptoSuiteError):
    """``have`` is the suite the data carries, ``want`` the one the caller runs."""

    kind = "suite_mismatch"

    def __init__(self, what: str, have: str, want: str, hint: str = "") -> None:
        self.what, self.have, self.want = what, have, want
        msg = f"{what} was made under crypto suite '{have}', this deployment runs '{want}'"
        super().__init__(f"{msg}; {hint}" if hint else msg)


class KeyFileError(CryptoSuiteError):
    kind = "key_file"

"""Errors of the crypto-suite layer.

    CryptoSuiteError      invalid    (base)
    ├── UnknownSuite      invalid    a suite or algorithm name that is not defined here
    ├── SuiteMismatch     conflict   data made under one suite met a caller of another
    ├── KeyFileError      invalid    a key file that cannot be read or has the wrong shape
    └── AeadFailure       integrity  sealed data failed authentication (gmcrypto.suite)
"""

from __future__ import annotations


class CryptoSuiteError(Exception):
    kind = "invalid"


class UnknownSuite(CryptoSuiteError):
    kind = "invalid"


class SuiteMismatch(CryptoSuiteError):
    """``have`` is the suite the data carries, ``want`` the one the caller runs."""

    kind = "conflict"

    def __init__(self, what: str, have: str, want: str, hint: str = "") -> None:
        self.what, self.have, self.want = what, have, want
        msg = f"{what} was made under crypto suite '{have}', this deployment runs '{want}'"
        super().__init__(f"{msg}; {hint}" if hint else msg)


class KeyFileError(CryptoSuiteError):
    kind = "invalid"

"""Crypto suites (``intl`` and the commercial ``gm``) shared by every domain package.

A neutral library: it imports neither ``quanguard`` nor any domain package, so
``monitor``, ``exchange`` and ``desensitize`` may all use it without importing each other.
"""

from __future__ import annotations

from gmcrypto.errors import CryptoSuiteError, KeyFileError, SuiteMismatch, UnknownSuite
from gmcrypto.sign import (
    SM2_DEFAULT_UID,
    Ed25519Signer,
    SignerLike,
    Sm2Signer,
    key_id,
    load_or_create_sm2,
    suite_of_signature,
    verify_signature,
)
from gmcrypto.suite import GM, INTL, SUITES, AeadFailure, Suite, get_suite, suite_for_hash

__all__ = [  # noqa: RUF022 - plain sorted()
    "AeadFailure",
    "CryptoSuiteError",
    "Ed25519Signer",
    "GM",
    "INTL",
    "KeyFileError",
    "SM2_DEFAULT_UID",
    "SUITES",
    "SignerLike",
    "Sm2Signer",
    "Suite",
    "SuiteMismatch",
    "UnknownSuite",
    "get_suite",
    "key_id",
    "load_or_create_sm2",
    "suite_for_hash",
    "suite_of_signature",
    "verify_signature",
]

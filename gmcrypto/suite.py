"""Crypto suites: one named set of primitives per deployment.

``intl`` (the default) is SHA-256, Ed25519, AES-256-GCM, HMAC-SHA-256 and FF1 on AES;
``gm`` is the commercial (国密) set: SM3 (GB/T 32905), SM2 signatures with SM3 and the
default user ID ``1234567812345678`` (GB/T 32918, GB/T 35276), SM4-GCM (GB/T 32907 in
GCM mode, RFC 8998), HMAC-SM3 and FF1 with SM4 as its block cipher (``ff1-sm4``; NIST
SP 800-38G approves FF1 with AES only).

A ``Suite`` is a frozen value; every piece of data that depends on it records
``suite.name`` (or the algorithm names) so that nothing is ever read under another
suite. Hash, MAC and AEAD come from ``cryptography``/OpenSSL; SM2 from ``gmalg``
(see :mod:`gmcrypto.sign`).
"""

from __future__ import annotations

import hashlib
import hmac as _hmac
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gmcrypto.errors import CryptoSuiteError, UnknownSuite

NONCE = 12
TAG = 16


def _hashlib_or_cryptography(name: str, ctor: type[hashes.HashAlgorithm]) -> Callable[[bytes], bytes]:
    try:
        hashlib.new(name, b"")
    except ValueError:  # an OpenSSL without it in hashlib: go through cryptography
        def digest(data: bytes) -> bytes:
            h = hashes.Hash(ctor())
            h.update(data)
            return h.finalize()
        return digest
    return lambda data: hashlib.new(name, data).digest()


class _Incremental:
    def __init__(self, alg: hashes.HashAlgorithm) -> None:
        self._h = hashes.Hash(alg)

    def update(self, data: bytes) -> None:
        self._h.update(data)

    def hexdigest(self) -> str:
        return self._h.finalize().hex()


class AeadFailure(CryptoSuiteError):
    kind = "integrity"


@dataclass(frozen=True)
class Suite:
    """The primitives of one suite. ``hash`` is the one-shot digest (32 bytes)."""

    name: str
    hash_alg: str  # "sha256" | "sm3"
    sign_alg: str  # "ed25519" | "sm2-sm3"
    aead_alg: str  # "aes-256-gcm" | "sm4-gcm"
    mac_alg: str  # "hmac-sha256" | "hmac-sm3"
    fpe_alg: str  # "ff1-aes" | "ff1-sm4"
    key_size: int  # AEAD/FPE key bytes: 32 (AES-256) or 16 (SM4)

    # -- hashing -------------------------------------------------------------------
    @property
    def hash(self) -> Callable[[bytes], bytes]:
        return _HASHES[self.hash_alg]

    def hexdigest(self, data: bytes) -> str:
        return self.hash(data).hex()

    def new_hash(self) -> Any:
        """An incremental hash of the suite (``update``/``hexdigest``), for streams."""
        try:
            return hashlib.new(self.hash_alg)
        except ValueError:  # an OpenSSL without SM3 in hashlib: cryptography's
            return _Incremental(hashes.SM3())

    def hmac(self, key: bytes, data: bytes) -> bytes:
        return _hmac.new(key, data, _DIGESTMOD[self.hash_alg]).digest()

    # -- authenticated encryption -----------------------------------------------------
    def new_key(self) -> bytes:
        return os.urandom(self.key_size)

    def seal(self, key: bytes, plaintext: bytes, aad: bytes) -> bytes:
        """Encrypt and authenticate; returns nonce || ciphertext || tag."""
        nonce = os.urandom(NONCE)
        if self.aead_alg == "aes-256-gcm":
            return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)
        enc = Cipher(algorithms.SM4(_sm4_key(key)), modes.GCM(nonce)).encryptor()
        enc.authenticate_additional_data(aad)
        body = enc.update(plaintext) + enc.finalize()
        return nonce + body + enc.tag

    def open(self, key: bytes, sealed: bytes, aad: bytes) -> bytes:
        """Inverse of :meth:`seal`. Raises AeadFailure when authentication fails."""
        if len(sealed) < NONCE + TAG:
            raise AeadFailure("sealed data is too short")
        nonce, body = sealed[:NONCE], sealed[NONCE:]
        try:
            if self.aead_alg == "aes-256-gcm":
                return AESGCM(key).decrypt(nonce, body, aad)
            dec = Cipher(algorithms.SM4(_sm4_key(key)), modes.GCM(nonce, body[-TAG:])).decryptor()
            dec.authenticate_additional_data(aad)
            return dec.update(body[:-TAG]) + dec.finalize()
        except (InvalidTag, ValueError) as exc:
            raise AeadFailure(
                f"{self.aead_alg}: data failed authentication (tampered, wrong key or suite)"
            ) from exc

    # -- the block cipher of FF1 --------------------------------------------------------
    def block_encryptor(self, key: bytes) -> CipherContext:
        """ECB encryptor of the suite's 128-bit block cipher (FF1's PRF building block)."""
        if self.fpe_alg == "ff1-aes":
            return Cipher(algorithms.AES(key), modes.ECB()).encryptor()
        return Cipher(algorithms.SM4(_sm4_key(key)), modes.ECB()).encryptor()

    def describe(self) -> dict[str, Any]:
        return {"suite": self.name, "hash": self.hash_alg, "signature": self.sign_alg,
                "aead": self.aead_alg, "mac": self.mac_alg, "fpe": self.fpe_alg}


def _sm4_key(key: bytes) -> bytes:
    # SM4 keys are 128 bits. A 32-byte secret (a key file shared with the intl suite)
    # is reduced with SM3 under a label rather than truncated.
    if len(key) == 16:
        return key
    if len(key) == 32:
        return _HASHES["sm3"](b"quanguard-sm4-key\x00" + key)[:16]
    raise CryptoSuiteError(f"SM4 key must be 16 or 32 bytes, got {len(key)}")


_HASHES: dict[str, Callable[[bytes], bytes]] = {
    "sha256": lambda data: hashlib.sha256(data).digest(),
    "sm3": _hashlib_or_cryptography("sm3", hashes.SM3),
}


def _sm3_mod(data: bytes = b"") -> Any:
    return hashlib.new("sm3", data)


_DIGESTMOD: dict[str, Any] = {"sha256": hashlib.sha256, "sm3": _sm3_mod}

INTL = Suite("intl", "sha256", "ed25519", "aes-256-gcm", "hmac-sha256", "ff1-aes", 32)
GM = Suite("gm", "sm3", "sm2-sm3", "sm4-gcm", "hmac-sm3", "ff1-sm4", 16)
SUITES: dict[str, Suite] = {"intl": INTL, "gm": GM}
_BY_HASH = {s.hash_alg: s for s in SUITES.values()}


def get_suite(name: str | None) -> Suite:
    """The suite called ``name`` (``None`` or ``""`` means ``intl``, the default)."""
    key = (name or "intl").strip().lower()
    try:
        return SUITES[key]
    except KeyError:
        raise UnknownSuite(f"unknown crypto suite {name!r} (known: intl gm)") from None


def suite_for_hash(hash_alg: str | None) -> Suite:
    """The suite whose hash is ``hash_alg`` (documents name their algorithms)."""
    try:
        return _BY_HASH[(hash_alg or "sha256").lower()]
    except KeyError:
        raise UnknownSuite(f"unknown hash algorithm {hash_alg!r} (known: sha256 sm3)") from None

"""Signers and verification for both suites, behind one protocol.

``Ed25519`` comes from ``cryptography``; ``SM2`` (GB/T 32918.2 with SM3 and the default
user ID ``1234567812345678`` of GB/T 35276) signs and verifies through ``gmssl-pyx``, a C
extension of GmSSL 3 (the reference implementation of the SM algorithms): in the same
runs it signed 3-10 times and verified 25-70 times as fast as the pure-Python ``gmalg``
(``bench/crypto_suite.py`` measures both and the other candidates). ``gmalg`` still makes keys and derives public points (once per key),
and the tests hold the two libraries to each other. GmSSL reports a failed verification
on stderr as well as in its result; the result is what counts here.

Public keys travel as raw bytes: 32 bytes for Ed25519, the 65-byte uncompressed point
(``04 || x || y``) for SM2. An SM2 signature is ``r || s`` (64 bytes). A key id is the
first 16 hex digits of the suite's hash of the raw public key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import gmalg
import gmssl_pyx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from gmcrypto.errors import KeyFileError, UnknownSuite
from gmcrypto.keyfile import publish_private_file
from gmcrypto.suite import SUITES, Suite

SM2_DEFAULT_UID = b"1234567812345678"
SIGN_ALGS = ("ed25519", "sm2-sm3")


class SignerLike(Protocol):
    """What a trail or a receipt needs from a signing key."""

    @property
    def algorithm(self) -> str: ...
    def public_bytes(self) -> bytes: ...
    def sign(self, message: bytes) -> bytes: ...


@dataclass(frozen=True)
class Ed25519Signer:
    private: Ed25519PrivateKey
    algorithm: str = "ed25519"

    def public_bytes(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)


@dataclass(frozen=True)
class Sm2Signer:
    """SM2 with SM3 and the default user ID. ``secret`` is the 32-byte private scalar."""

    secret: bytes
    uid: bytes = SM2_DEFAULT_UID
    algorithm: str = "sm2-sm3"
    _pub: bytes = field(default=b"", repr=False, compare=False)

    @classmethod
    def generate(cls) -> Sm2Signer:
        sk, _pk = gmalg.SM2().generate_keypair()
        # gmalg returns the scalar's minimal big-endian bytes: one key in 256 has a leading
        # zero byte dropped, and the key file holds exactly 32 bytes.
        return cls(sk.rjust(32, b"\0"))

    def public_bytes(self) -> bytes:
        if not self._pub:
            object.__setattr__(self, "_pub", gmalg.SM2().generate_pk(self.secret))
        return self._pub

    def sign(self, message: bytes) -> bytes:
        der = gmssl_pyx.sm2_sign(self.secret, self.public_bytes()[1:], message,
                                 signer_id=self.uid)
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def verify_signature(algorithm: str, public: bytes, signature: bytes, message: bytes) -> bool:
    """True when ``signature`` by ``public`` over ``message`` holds under ``algorithm``.

    Malformed keys or signatures are False, never an exception; an unknown algorithm is
    UnknownSuite (a document naming an algorithm we do not know must not pass)."""
    if algorithm == "ed25519":
        try:
            Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True
    if algorithm == "sm2-sm3":
        if len(signature) != 64 or len(public) != 65 or public[0] != 4:
            return False
        der = encode_dss_signature(int.from_bytes(signature[:32], "big"),
                                   int.from_bytes(signature[32:], "big"))
        try:
            return bool(gmssl_pyx.sm2_verify(public[1:], message, der,
                                             signer_id=SM2_DEFAULT_UID))
        except (gmssl_pyx.InvalidValueError, gmssl_pyx.GmsslInnerError):
            return False  # not a point of the curve, or a malformed signature
    raise UnknownSuite(f"unknown signature algorithm {algorithm!r} (known: {' '.join(SIGN_ALGS)})")


def key_id(suite: Suite, public: bytes) -> str:
    return suite.hash(public).hex()[:16]


def suite_of_signature(algorithm: str) -> Suite:
    for s in SUITES.values():
        if s.sign_alg == algorithm:
            return s
    raise UnknownSuite(f"unknown signature algorithm {algorithm!r} (known: {' '.join(SIGN_ALGS)})")


SM2_KEY_HEADER = b"quanguard-sm2-private-key/1\n"


def load_or_create_sm2(path: Path) -> Sm2Signer:
    """Read an SM2 private key file (header line + hex scalar), creating it 0600 when absent."""
    path = Path(path)
    if path.exists():
        data = path.read_bytes()
        if not data.startswith(SM2_KEY_HEADER):
            raise KeyFileError(f"{path}: not an SM2 private key file")
        try:
            secret = bytes.fromhex(data[len(SM2_KEY_HEADER):].decode().strip())
        except (UnicodeDecodeError, ValueError) as exc:
            raise KeyFileError(f"{path}: SM2 key is not hex") from exc
        if len(secret) != 32:
            raise KeyFileError(f"{path}: SM2 key must be 32 bytes, found {len(secret)}")
        return Sm2Signer(secret)
    signer = Sm2Signer.generate()
    if not publish_private_file(path, SM2_KEY_HEADER + signer.secret.hex().encode() + b"\n"):
        return load_or_create_sm2(path)  # another process made it first: use that one
    return signer

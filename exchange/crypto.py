"""Keys of the exchange: master key (wraps data keys), data encryption, keyed hashes.

Layout under the key directory (files created 0600 on first use):
``exchange-master.key`` 32 random bytes; ``exchange-receipt.key`` raw Ed25519 seed.
Data at rest: AES-256-GCM (``intl`` suite) or SM4-GCM (``gm``) with a fresh data key per
dataset; the data key is itself sealed with the master key. The dataset name is the
associated data of both, so a ciphertext moved to another dataset fails to open.

Sealed data made under a crypto suite starts with ``quanguard-suite=NAME;`` so it carries
its suite; untagged data predates the suites and is ``intl``. A master key opens only
wraps of its own suite (SuiteMismatch otherwise: re-wrap with ``keys rotate-master``).
Keyed hashes (consent subjects) are HMAC-SHA-256 or HMAC-SM3; lookups try every suite's
hash so a subject recorded under one suite is still found under the other (fail closed).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from exchange.errors import IntegrityFailure, KeyFileError
from gmcrypto import INTL, SUITES, AeadFailure, Suite, SuiteMismatch
from gmcrypto.keyfile import publish_private_file

MASTER_KEY_FILE = "exchange-master.key"
# The root of the per-dataset subject-hash keys. Split from the master key on its first
# rotation (holding the master's value then), so stored subject hashes stay valid while
# the master key that wraps data keys changes.
SUBJECT_KEY_FILE = "exchange-subject.key"
RECEIPT_KEY_FILE = "exchange-receipt.key"
_NONCE = 12


def load_or_create_secret(path: Path, size: int = 32) -> bytes:
    """Read a secret key file, creating it (mode 0600) when absent.

    Raises KeyFileError when the file exists with the wrong size or is readable by others.
    """
    if not path.exists():  # whole or absent, whoever of several workers makes it
        publish_private_file(path, os.urandom(size))
    if path.exists():
        mode = path.stat().st_mode & 0o077
        if mode:
            raise KeyFileError(f"{path.name}: key file is accessible by group/others; chmod 600")
        data = path.read_bytes()
        if len(data) != size:
            raise KeyFileError(f"{path.name}: expected {size} bytes, found {len(data)}")
        return data
    raise KeyFileError(f"{path.name}: key file vanished while it was being read")


def seal(key: bytes, plaintext: bytes, aad: bytes, suite: Suite | None = None) -> bytes:
    """AES-GCM encrypt; returns nonce || ciphertext+tag. With a ``suite``: the suite's
    AEAD, prefixed with its tag (``quanguard-suite=NAME;``)."""
    if suite is not None:
        return _tag(suite) + suite.seal(key, plaintext, _suite_aad(suite, aad))
    nonce = os.urandom(_NONCE)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def sealed_suite(sealed: bytes) -> Suite:
    """The suite sealed data was made under (untagged: intl, from before the suites)."""
    if sealed.startswith(_TAG):
        name = sealed[len(_TAG):sealed.find(b";", len(_TAG))].decode("ascii", "replace")
        if name in SUITES:
            return SUITES[name]
        raise IntegrityFailure(f"sealed data names an unknown crypto suite {name!r}")
    return INTL


def open_sealed(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    """Inverse of seal (tagged or not). Raises IntegrityFailure when the tag does not verify."""
    if sealed.startswith(_TAG):
        suite = sealed_suite(sealed)
        try:
            return suite.open(key, sealed[len(_tag(suite)):], _suite_aad(suite, aad))
        except AeadFailure as exc:
            raise IntegrityFailure(f"encrypted data failed authentication ({exc})") from exc
    try:
        return AESGCM(key).decrypt(sealed[:_NONCE], sealed[_NONCE:], aad)
    except (InvalidTag, ValueError) as exc:
        raise IntegrityFailure("encrypted data failed authentication (tampered or wrong key)") from exc


_TAG = b"quanguard-suite="


def _tag(suite: Suite) -> bytes:
    return _TAG + suite.name.encode() + b";"


def _suite_aad(suite: Suite, aad: bytes) -> bytes:
    # The suite is authenticated too: a tag rewritten to another suite cannot open.
    return b"suite:" + suite.name.encode() + b"\x00" + aad


@dataclass(frozen=True)
class MasterKey:
    """The key that wraps per-dataset data keys and derives per-dataset hash keys."""

    secret: bytes
    subject_root: bytes | None = None
    suite: Suite = INTL

    @classmethod
    def from_dir(cls, key_dir: Path, suite: Suite = INTL) -> MasterKey:
        subject = Path(key_dir) / SUBJECT_KEY_FILE
        root = load_or_create_secret(subject) if subject.exists() else None
        return cls(load_or_create_secret(Path(key_dir) / MASTER_KEY_FILE), root, suite)

    def new_data_key(self) -> bytes:
        return self.suite.new_key()

    def seal_data(self, data_key: bytes, plaintext: bytes, dataset: str) -> bytes:
        """Encrypt a dataset's rows under this deployment's suite (tagged with it)."""
        return seal(data_key, plaintext, dataset.encode(),
                    None if self.suite is INTL else self.suite)

    def wrap(self, data_key: bytes, dataset: str) -> bytes:
        # intl wraps stay untagged (byte-compatible with keys wrapped before the suites)
        return seal(self.secret, data_key, b"wrap:" + dataset.encode(),
                    None if self.suite is INTL else self.suite)

    def unwrap(self, wrapped: bytes, dataset: str) -> bytes:
        """Open a wrapped data key. A key wrapped under another suite is SuiteMismatch."""
        have = sealed_suite(wrapped)
        if have.name != self.suite.name:
            raise SuiteMismatch(
                f"the data key of dataset {dataset!r}", have.name, self.suite.name,
                f"re-wrap the keys under '{self.suite.name}' with 'quanguard keys rotate-master' "
                f"or run with QUANGUARD_CRYPTO={have.name}")
        return open_sealed(self.secret, wrapped, b"wrap:" + dataset.encode())

    def subject_key(self, dataset: str, suite: Suite | None = None) -> bytes:
        """Per-dataset key for hashing subject identifiers (consent registry)."""
        s = suite or self.suite
        root = self.subject_root if self.subject_root is not None else self.secret
        return s.hmac(root, b"subject:" + dataset.encode())

    def subject_hasher(self, dataset: str) -> SubjectHasher:
        return SubjectHasher(self.suite, {n: self.subject_key(dataset, s) for n, s in SUITES.items()})


@dataclass(frozen=True)
class SubjectHasher:
    """Keyed hashes of one dataset's subjects: recorded under the running suite, looked up
    under every suite (a withdrawal recorded before a switch still counts)."""

    suite: Suite
    keys: dict[str, bytes]

    def record(self, value: str) -> str:
        return keyed_hash(self.keys[self.suite.name], value, self.suite)

    def lookups(self, value: str) -> tuple[str, ...]:
        return tuple(keyed_hash(self.keys[n], value, s) for n, s in SUITES.items())


def keyed_hash(key: bytes, value: str, suite: Suite = INTL) -> str:
    """HMAC-SHA256 (HMAC-SM3 under gm) hex of a normalised identifier (whitespace-trimmed)."""
    if suite is INTL:
        return hmac.new(key, value.strip().encode(), hashlib.sha256).hexdigest()
    return suite.hmac(key, value.strip().encode()).hex()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

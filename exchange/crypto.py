"""Keys of the exchange: master key (wraps data keys), data encryption, keyed hashes.

Layout under the key directory (files created 0600 on first use):
``exchange-master.key`` 32 random bytes; ``exchange-receipt.key`` raw Ed25519 seed.
Data at rest: AES-256-GCM with a fresh 32-byte data key per dataset; the data key is
itself sealed with the master key. The dataset name is the associated data of both, so
a ciphertext moved to another dataset fails to open.
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
    if path.exists():
        mode = path.stat().st_mode & 0o077
        if mode:
            raise KeyFileError(f"{path.name}: key file is accessible by group/others; chmod 600")
        data = path.read_bytes()
        if len(data) != size:
            raise KeyFileError(f"{path.name}: expected {size} bytes, found {len(data)}")
        return data
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = os.urandom(size)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(secret)
    return secret


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """AES-GCM encrypt; returns nonce || ciphertext+tag."""
    nonce = os.urandom(_NONCE)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    """Inverse of seal. Raises IntegrityFailure when the tag does not verify."""
    try:
        return AESGCM(key).decrypt(sealed[:_NONCE], sealed[_NONCE:], aad)
    except (InvalidTag, ValueError) as exc:
        raise IntegrityFailure("encrypted data failed authentication (tampered or wrong key)") from exc


@dataclass(frozen=True)
class MasterKey:
    """The key that wraps per-dataset data keys and derives per-dataset hash keys."""

    secret: bytes
    subject_root: bytes | None = None

    @classmethod
    def from_dir(cls, key_dir: Path) -> MasterKey:
        subject = Path(key_dir) / SUBJECT_KEY_FILE
        root = load_or_create_secret(subject) if subject.exists() else None
        return cls(load_or_create_secret(Path(key_dir) / MASTER_KEY_FILE), root)

    def wrap(self, data_key: bytes, dataset: str) -> bytes:
        return seal(self.secret, data_key, b"wrap:" + dataset.encode())

    def unwrap(self, wrapped: bytes, dataset: str) -> bytes:
        return open_sealed(self.secret, wrapped, b"wrap:" + dataset.encode())

    def subject_key(self, dataset: str) -> bytes:
        """Per-dataset key for hashing subject identifiers (consent registry)."""
        root = self.subject_root if self.subject_root is not None else self.secret
        return hmac.new(root, b"subject:" + dataset.encode(), hashlib.sha256).digest()


def keyed_hash(key: bytes, value: str) -> str:
    """HMAC-SHA256 hex of a normalised identifier (whitespace-trimmed)."""
    return hmac.new(key, value.strip().encode(), hashlib.sha256).hexdigest()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

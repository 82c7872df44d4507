"""Key material for the keyed masking operators.

One 32-byte master key, from a key file (32 raw bytes, or 64 hex characters) or
from ``<key_dir>/mask.key`` — created with mode 0600 (directory 0700) on first use.
Each operator gets its own sub-key, derived with HKDF-SHA-256 and the operator's
purpose as ``info``, so a hash pseudonym reveals nothing about the encryption key.

Keys are never printed: ``repr(Keyring)`` shows only that a key is present; errors
name the file and the length, never the bytes.

Raises :class:`desensitize.errors.KeyMaterialError` for a missing or unreadable
file, or a key of the wrong length.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from desensitize.errors import KeyMaterialError

KEY_BYTES = 32
KEY_FILE_NAME = "mask.key"

PURPOSE_SIZES = {"hash": 32, "encrypt": 64, "fpe": 32, "fake": 32, "noise": 32}


class Keyring:
    """Derives per-purpose keys from one master key."""

    __slots__ = ("_master",)

    def __init__(self, master: bytes) -> None:
        if len(master) != KEY_BYTES:
            raise KeyMaterialError(f"master key must be {KEY_BYTES} bytes, got {len(master)}")
        self._master = bytes(master)

    def __repr__(self) -> str:
        return "Keyring(<redacted>)"

    def derive(self, purpose: str, size: int | None = None) -> bytes:
        """The sub-key for ``purpose`` (hash, encrypt, fpe, fake, noise, or any label)."""
        length = size or PURPOSE_SIZES.get(purpose, 32)
        return _derive(self._master, purpose, length)


@lru_cache(maxsize=64)
def _derive(master: bytes, purpose: str, length: int) -> bytes:
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=length,
        salt=b"quanguard-desensitize-v1",
        info=purpose.encode(),
    )
    return hkdf.derive(master)


def parse_key(data: bytes, source: str) -> bytes:
    """32 raw bytes, or 64 hex characters (surrounding whitespace ignored)."""
    if len(data) == KEY_BYTES:
        return data
    text = data.strip()
    if len(text) == 2 * KEY_BYTES:
        try:
            return bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            pass
    raise KeyMaterialError(
        f"{source}: key must be {KEY_BYTES} bytes or {2 * KEY_BYTES} hex characters, "
        f"got {len(data)} bytes"
    )


def load_key_file(path: str | os.PathLike[str]) -> Keyring:
    """A keyring from a key file given by the user."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise KeyMaterialError(f"{p}: cannot read key file ({exc.strerror})") from None
    return Keyring(parse_key(data, str(p)))


def load_key_dir(key_dir: str | os.PathLike[str], *, create: bool = True) -> Keyring:
    """The keyring of ``key_dir``; the key file is created (0600) when ``create``."""
    d = Path(key_dir)
    path = d / KEY_FILE_NAME
    if not path.exists():
        if not create:
            raise KeyMaterialError(f"{path}: no masking key (run a mask once to create it)")
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return load_key_file(path)  # another process created it first
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(KEY_BYTES).hex().encode() + b"\n")
    return load_key_file(path)


def load_keyring(
    *, key_file: str | os.PathLike[str] | None = None, key_dir: str | os.PathLike[str] | None = None
) -> Keyring:
    """A key file wins over the key directory; one of them is required."""
    if key_file is not None:
        return load_key_file(key_file)
    if key_dir is not None:
        return load_key_dir(key_dir)
    raise KeyMaterialError("no key: pass a key file or set QUANGUARD_KEY_DIR")

"""Key material for the keyed masking operators.

One 32-byte master key, from a key file (32 raw bytes, or 64 hex characters) or
from ``<key_dir>/mask.key`` — created with mode 0600 (directory 0700) on first use.
Each operator gets its own sub-key, derived with HKDF-SHA-256 and the operator's
purpose as ``info``, so a hash pseudonym reveals nothing about the encryption key.

A keyring carries its crypto suite: ``intl`` derives with HKDF-SHA-256 (hash pseudonyms
HMAC-SHA-256, fpe on AES), ``gm`` with HKDF-SM3 (HMAC-SM3, fpe on SM4). A key directory's
file made under gm starts with the line ``suite=gm``; a file without it is intl. Loading a
key of one suite for a deployment of the other is refused (pseudonyms and FPE tokens would
silently change): keep the old key for the old data, and let the new suite make its own.

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
from gmcrypto import INTL, Suite
from gmcrypto.keyfile import publish_private_file

KEY_BYTES = 32
KEY_FILE_NAME = "mask.key"

PURPOSE_SIZES = {"hash": 32, "encrypt": 64, "fpe": 32, "fpe-sm4": 16, "fake": 32, "noise": 32}
SUITE_LINE = b"suite="


class Keyring:
    """Derives per-purpose keys from one master key, under one crypto suite."""

    __slots__ = ("_master", "suite")

    def __init__(self, master: bytes, suite: Suite = INTL) -> None:
        if len(master) != KEY_BYTES:
            raise KeyMaterialError(f"master key must be {KEY_BYTES} bytes, got {len(master)}")
        self._master = bytes(master)
        self.suite = suite

    def __repr__(self) -> str:
        return f"Keyring(<redacted>, suite={self.suite.name})"

    def derive(self, purpose: str, size: int | None = None) -> bytes:
        """The sub-key for ``purpose`` (hash, encrypt, fpe, fake, noise, or any label)."""
        length = size or PURPOSE_SIZES.get(purpose, 32)
        return _derive(self._master, purpose, length, self.suite.hash_alg)


@lru_cache(maxsize=64)
def _derive(master: bytes, purpose: str, length: int, hash_alg: str = "sha256") -> bytes:
    gm = hash_alg == "sm3"
    hkdf = HKDF(
        algorithm=hashes.SM3() if gm else hashes.SHA256(),
        length=length,
        salt=b"quanguard-desensitize-gm-v1" if gm else b"quanguard-desensitize-v1",
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


def load_key_file(path: str | os.PathLike[str], suite: Suite = INTL) -> Keyring:
    """A keyring from a key file given by the user.

    A file naming its suite (first line ``suite=NAME``) must name ``suite``; a plain key
    (32 raw bytes or 64 hex characters) is used under ``suite``."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise KeyMaterialError(f"{p}: cannot read key file ({exc.strerror})") from None
    if data.startswith(SUITE_LINE):
        line, _, data = data.partition(b"\n")
        named = line[len(SUITE_LINE):].decode("ascii", "replace").strip()
        if named != suite.name:
            raise KeyMaterialError(_other_suite(p, named, suite))
    return Keyring(parse_key(data, str(p)), suite)


def _other_suite(path: Path, named: str, suite: Suite) -> str:
    return (f"{path}: masking key of crypto suite '{named}', this deployment runs "
            f"'{suite.name}'; run with QUANGUARD_CRYPTO={named} to use it (its pseudonyms "
            f"and FPE tokens exist only under it), or move it aside to start a '{suite.name}' key")


def load_key_dir(key_dir: str | os.PathLike[str], *, create: bool = True,
                 suite: Suite = INTL) -> Keyring:
    """The keyring of ``key_dir``; the key file is created (0600) when ``create``.

    The key directory's file is the deployment's key record: one without a ``suite=``
    line is intl, so under gm it is refused rather than reused with other algorithms."""
    d = Path(key_dir)
    path = d / KEY_FILE_NAME
    if not path.exists():
        if not create:
            raise KeyMaterialError(f"{path}: no masking key (run a mask once to create it)")
        header = b"" if suite is INTL else SUITE_LINE + suite.name.encode() + b"\n"
        # whole or absent: another process (a worker starting too) may be making it now
        publish_private_file(path, header + secrets.token_bytes(KEY_BYTES).hex().encode() + b"\n")
    if suite is not INTL:
        try:
            head = path.read_bytes()[:len(SUITE_LINE)]
        except OSError as exc:
            raise KeyMaterialError(f"{path}: cannot read key file ({exc.strerror})") from None
        if head != SUITE_LINE:
            raise KeyMaterialError(_other_suite(path, INTL.name, suite))
    return load_key_file(path, suite)


def load_keyring(
    *, key_file: str | os.PathLike[str] | None = None, key_dir: str | os.PathLike[str] | None = None,
    suite: Suite = INTL,
) -> Keyring:
    """A key file wins over the key directory; one of them is required."""
    if key_file is not None:
        return load_key_file(key_file, suite)
    if key_dir is not None:
        return load_key_dir(key_dir, suite=suite)
    raise KeyMaterialError("no key: pass a key file or set QUANGUARD_KEY_DIR")

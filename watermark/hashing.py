"""Keyed hashing: row keys, per-cell selectors, recipient codewords, key fingerprints.

Every mark position is a function of (secret, canonical column name, canonical row key)
only — never of a row's or column's position — so that sampling, shuffling and column
dropping leave the surviving marks where the detector looks for them.

One keyed BLAKE2b per row gives a 64-bit row hash; per column it is mixed with a keyed
column salt through the SplitMix64 finaliser (vectorised in numpy).
"""

from __future__ import annotations

import hashlib
import itertools
import unicodedata

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_NUMERIC_KEY = r"^[+-]?[0-9]+(\.[0-9]+)?$"
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def subkey(secret: bytes, label: str) -> bytes:
    """A 32-byte key derived from ``secret`` for one purpose (domain separation)."""
    base = secret if len(secret) <= 64 else hashlib.blake2b(secret).digest()
    return hashlib.blake2b(label.encode(), key=base, digest_size=32).digest()


def key_fingerprint(secret: bytes) -> str:
    """Short public identifier of a secret (safe to store and print)."""
    return "wmk-" + hashlib.blake2b(b"fingerprint", key=subkey(secret, "fp"),
                                    digest_size=8).hexdigest()


def canonical_name(name: str) -> str:
    """Column names compare after NFKC, trimming and lower-casing."""
    return unicodedata.normalize("NFKC", name).strip().lower()


def canonical_keys(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Row-key text as compared by embed and detect.

    Trimmed and lower-cased; purely numeric keys lose a plus sign, leading zeros and
    trailing fractional zeros, and a date-time at midnight is its date, so that a
    spreadsheet round trip (``"000123"`` → ``123``, ``"7"`` → ``7.0``, ``"2024-01-05"`` →
    ``2024-01-05 00:00:00``) leaves the key unchanged.
    """
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    s = pc.cast(arr, pa.string()) if arr.type != pa.string() else arr
    s = pc.fill_null(s, "")
    s = pc.utf8_lower(pc.utf8_trim_whitespace(s))
    # A spreadsheet turns a date into a datetime at midnight: key it as the date.
    s = pc.replace_substring_regex(s, r"^([0-9]{4}-[0-9]{2}-[0-9]{2})[ t]00:00:00$", r"\1")
    is_num = pc.match_substring_regex(s, _NUMERIC_KEY)
    n = pc.replace_substring_regex(s, r"^\+", "")
    n = pc.replace_substring_regex(n, r"^(-?)0+([0-9])", r"\1\2")
    n = pc.replace_substring_regex(n, r"(\.[0-9]*?)0+$", r"\1")
    n = pc.replace_substring_regex(n, r"\.$", "")
    return pc.if_else(is_num, n, s)


def virtual_keys(columns: list[pa.Array]) -> pa.Array:
    """Join canonical values of several columns (callers pass them sorted by name)."""
    parts = [canonical_keys(c) for c in columns]
    if len(parts) == 1:
        return parts[0]
    return pc.binary_join_element_wise(*parts, "\x1f")


def row_hashes(keys: pa.Array, secret: bytes) -> np.ndarray:
    """Keyed 64-bit hash of every canonical key (uint64 array, one per row).

    BLAKE2b in keyed mode (RFC 7693) is the MAC; the keys are sliced straight out of
    the Arrow buffers to keep the per-row Python work to one call.
    """
    k = subkey(secret, "row")
    blake = hashlib.blake2b
    if keys.type != pa.string():
        keys = pc.cast(keys, pa.string())
    if len(keys) == 0:
        return np.zeros(0, dtype=np.uint64)
    if keys.null_count:
        keys = pc.fill_null(keys, "")
    bufs = keys.buffers()
    offs = np.frombuffer(bufs[1], dtype=np.int32)[keys.offset: keys.offset + len(keys) + 1]
    data = bufs[2].to_pybytes() if bufs[2] is not None else b""
    o = offs.tolist()
    joined = b"".join([blake(data[a:b], key=k, digest_size=8).digest()
                       for a, b in itertools.pairwise(o)])
    return np.frombuffer(joined, dtype="<u8").astype(np.uint64, copy=False)


def column_salt(secret: bytes, column: str) -> np.uint64:
    """Keyed 64-bit salt of a column name."""
    d = hashlib.blake2b(canonical_name(column).encode(), key=subkey(secret, "col"),
                        digest_size=8).digest()
    return np.uint64(int.from_bytes(d, "little"))


def mix(row_hash: np.ndarray, salt: np.uint64) -> np.ndarray:
    """SplitMix64 finaliser of ``row_hash ^ salt`` (one 64-bit selector per cell)."""
    z = row_hash ^ salt
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def codeword(secret: bytes, recipient: str, bits: int) -> np.ndarray:
    """The recipient's ``bits``-long binary codeword (uint8 0/1), uniform and keyed."""
    k = subkey(secret, "code")
    out = b""
    counter = 0
    while len(out) * 8 < bits:
        out += hashlib.blake2b(recipient.encode() + b"\x00" + counter.to_bytes(4, "big"),
                               key=k, digest_size=64).digest()
        counter += 1
    return np.unpackbits(np.frombuffer(out, dtype=np.uint8))[:bits].copy()


def codeword_hex(word: np.ndarray) -> str:
    """Hex text of a codeword (for the registry)."""
    return np.packbits(word.astype(np.uint8)).tobytes().hex()


def codeword_from_hex(text: str, bits: int) -> np.ndarray:
    """Inverse of :func:`codeword_hex`."""
    return np.unpackbits(np.frombuffer(bytes.fromhex(text), dtype=np.uint8))[:bits].copy()

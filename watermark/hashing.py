"""Keyed hashing: row keys, per-cell selectors, recipient codewords, key fingerprints.

Every mark position is a function of (secret, canonical column name, canonical row key)
only — never of a row's or column's position — so that sampling, shuffling and column
dropping leave the surviving marks where the detector looks for them.

One keyed SipHash-2-4 per row (vectorised) gives a 64-bit row hash; per column it is
mixed with a keyed column salt through the SplitMix64 finaliser (vectorised in numpy).
"""

from __future__ import annotations

import hashlib
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
    midnight = pc.or_(pc.ends_with(s, " 00:00:00"), pc.ends_with(s, "t00:00:00"))
    if pc.any(midnight).as_py():
        s = pc.replace_substring_regex(
            s, r"^([0-9]{4}-[0-9]{2}-[0-9]{2})[ t]00:00:00$", r"\1")
    is_num = pc.match_substring_regex(s, _NUMERIC_KEY)
    if not pc.any(is_num).as_py():
        return s
    # Only the numbers that need it are rewritten (one test instead of four rewrites).
    need = pc.and_(is_num, pc.match_substring_regex(s, r"^\+|^-?0[0-9]|\.[0-9]*0$|\.$"))
    if not pc.any(need).as_py():
        return s
    n = pc.filter(s, need)
    n = pc.replace_substring_regex(n, r"^\+", "")
    n = pc.replace_substring_regex(n, r"^(-?)0+([0-9])", r"\1\2")
    n = pc.replace_substring_regex(n, r"(\.[0-9]*?)0+$", r"\1")
    n = pc.replace_substring_regex(n, r"\.$", "")
    return pc.replace_with_mask(s, need, n)


def virtual_keys(columns: list[pa.Array]) -> pa.Array:
    """Join canonical values of several columns (callers pass them sorted by name)."""
    parts = [canonical_keys(c) for c in columns]
    if len(parts) == 1:
        return parts[0]
    return pc.binary_join_element_wise(*parts, "\x1f")


def row_hashes(keys: pa.Array, secret: bytes) -> np.ndarray:
    """Keyed 64-bit hash of every canonical key (uint64 array, one per row).

    SipHash-2-4 (Aumasson & Bernstein, 2012; the keyed PRF of hash tables) computed for
    all rows at once in numpy. The value depends on the key text only, never on the
    other rows of the batch.
    """
    if keys.type != pa.string():
        keys = pc.cast(keys, pa.string())
    if len(keys) == 0:
        return np.zeros(0, dtype=np.uint64)
    if keys.null_count:
        keys = pc.fill_null(keys, "")
    k = subkey(secret, "row")
    bufs = keys.buffers()
    offs = np.frombuffer(bufs[1], dtype=np.int32)[keys.offset: keys.offset + len(keys) + 1]
    data = (np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None
            else np.zeros(0, dtype=np.uint8))
    lengths = np.diff(offs).astype(np.int64)
    starts = offs[:-1].astype(np.int64)
    key = k[:16]
    long = lengths > _WIDE
    if not long.any():
        return siphash24(key, data, starts, lengths)
    # Long keys in their own pass, so a few of them do not widen the whole matrix.
    out = np.empty(len(keys), dtype=np.uint64)
    for part in (~long, long):
        idx = np.flatnonzero(part)
        if idx.size:
            out[idx] = siphash24(key, data, starts[idx], lengths[idx])
    return out


_WIDE = 64
_U = np.uint64


def _rotl(x: np.ndarray, b: int) -> np.ndarray:
    out: np.ndarray = (x << _U(b)) | (x >> _U(64 - b))
    return out


def _sipround(v0: np.ndarray, v1: np.ndarray, v2: np.ndarray,
              v3: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    v0 = v0 + v1
    v1 = _rotl(v1, 13) ^ v0
    v0 = _rotl(v0, 32)
    v2 = v2 + v3
    v3 = _rotl(v3, 16) ^ v2
    v0 = v0 + v3
    v3 = _rotl(v3, 21) ^ v0
    v2 = v2 + v1
    v1 = _rotl(v1, 17) ^ v2
    v2 = _rotl(v2, 32)
    return v0, v1, v2, v3


def siphash24(key: bytes, data: np.ndarray, starts: np.ndarray,
              lengths: np.ndarray) -> np.ndarray:
    """SipHash-2-4 with a 16-byte ``key`` of the byte strings ``data[s:s+l]`` (vectorised)."""
    n = lengths.size
    blocks = lengths // 8 + 1  # message words per row, the last one carries the length
    width = int(blocks.max()) * 8
    pos = np.arange(width, dtype=np.int64)
    idx = starts[:, None] + pos[None, :]
    inside = pos[None, :] < lengths[:, None]
    mat = np.zeros((n, width), dtype=np.uint8)
    if data.size:
        mat[inside] = data[idx[inside]]
    mat[np.arange(n), blocks * 8 - 1] = (lengths & 0xFF).astype(np.uint8)
    words = mat.view("<u8").astype(np.uint64, copy=False)
    k0 = _U(int.from_bytes(key[:8], "little"))
    k1 = _U(int.from_bytes(key[8:16], "little"))
    v0 = np.full(n, k0 ^ _U(0x736F6D6570736575), dtype=np.uint64)
    v1 = np.full(n, k1 ^ _U(0x646F72616E646F6D), dtype=np.uint64)
    v2 = np.full(n, k0 ^ _U(0x6C7967656E657261), dtype=np.uint64)
    v3 = np.full(n, k1 ^ _U(0x7465646279746573), dtype=np.uint64)
    for i in range(words.shape[1]):
        m = words[:, i]
        active = i < blocks
        n0, n1, n2, n3 = v0, v1, v2, v3 ^ m
        n0, n1, n2, n3 = _sipround(n0, n1, n2, n3)
        n0, n1, n2, n3 = _sipround(n0, n1, n2, n3)
        n0 = n0 ^ m
        if active.all():
            v0, v1, v2, v3 = n0, n1, n2, n3
        else:
            v0, v1 = np.where(active, n0, v0), np.where(active, n1, v1)
            v2, v3 = np.where(active, n2, v2), np.where(active, n3, v3)
    v2 = v2 ^ _U(0xFF)
    for _ in range(4):
        v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
    out: np.ndarray = v0 ^ v1 ^ v2 ^ v3
    return out


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

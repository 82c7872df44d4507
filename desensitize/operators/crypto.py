"""Keyed operators: ``hash`` (HMAC-SHA-256 pseudonyms) and ``encrypt`` (AES-SIV).

Both are deterministic under one key, so the same value gives the same output in
every file (joinable), and a different key gives a different output.  Each
distinct value is processed once per batch (dictionary encoding), then spread back
with ``take``.  ``encrypt`` output is ``SIV:`` + unpadded base64url and is
reversed by :func:`decrypt_values` (RFC 5297 AES-SIV, 512-bit key).
"""

from __future__ import annotations

import base64
import hashlib
from array import array
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from desensitize.errors import OperatorError
from desensitize.operators._base import OpContext, Operator, Param

ENC_PREFIX = "SIV:"

try:  # CPython's own SHA-256: far cheaper per call than OpenSSL's EVP for short inputs
    from _sha256 import sha256 as _sha256
except ImportError:  # pragma: no cover - other interpreters
    _sha256 = hashlib.sha256


def hmac_many(key: bytes, messages: Iterable[bytes]) -> list[bytes]:
    """HMAC-SHA-256 (RFC 2104) of each message under ``key``.

    The inner and outer pads are hashed once and their states copied per message,
    which is what ``hmac.digest`` recomputes on every call.
    """
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    block = key.ljust(64, b"\0")
    inner = _sha256(bytes(b ^ 0x36 for b in block))
    outer = _sha256(bytes(b ^ 0x5C for b in block))
    icopy, ocopy = inner.copy, outer.copy
    out: list[bytes] = []
    append = out.append
    for m in messages:
        i = icopy()
        i.update(m)
        o = ocopy()
        o.update(i.digest())
        append(o.digest())
    return out


def per_distinct(values: pa.Array, fn: Callable[[list[str]], list[str]]) -> pa.Array:
    """Apply ``fn`` to the distinct values only and spread the results back."""
    encoded = values.dictionary_encode()
    mapped = pa.array(fn(encoded.dictionary.to_pylist()), pa.string())
    return mapped.take(encoded.indices)


def _hash(values: pa.Array, params: Mapping[str, Any], ctx: OpContext) -> pa.Array:
    key = ctx.key("hash")
    length = params["length"]
    if not 8 <= length <= 64:
        raise OperatorError("operator hash: length must be between 8 and 64 hex characters")
    prefix = params["prefix"]

    encoded = values.dictionary_encode()
    suite = getattr(ctx.keyring, "suite", None)
    if suite is not None and suite.mac_alg == "hmac-sm3":  # gm suite: HMAC-SM3 pseudonyms
        digests = [suite.hmac(key, v.encode()) for v in encoded.dictionary.to_pylist()]
    else:
        digests = hmac_many(key, [v.encode() for v in encoded.dictionary.to_pylist()])
    # one hex conversion for the whole batch, then fixed-width slices as an Arrow array
    text = b"".join(digests).hex().encode("ascii")
    n = len(digests)
    offsets = pa.py_buffer(bytes(memoryview(array("i", range(0, 64 * n + 1, 64)))))
    full = pa.StringArray.from_buffers(n, offsets, pa.py_buffer(text))
    out = pc.utf8_slice_codeunits(full, 0, length)
    if prefix:
        out = pc.binary_join_element_wise(prefix, out, "")
    return out.take(encoded.indices)


def _encrypt(values: pa.Array, params: Mapping[str, Any], ctx: OpContext) -> pa.Array:
    siv = AESSIV(ctx.key("encrypt"))

    def run(items: list[str]) -> list[str]:
        out = []
        for v in items:
            token = base64.urlsafe_b64encode(siv.encrypt(v.encode(), None)).rstrip(b"=")
            out.append(ENC_PREFIX + token.decode("ascii"))
        return out

    return per_distinct(values, run)


def _decrypt(values: pa.Array, params: Mapping[str, Any], ctx: OpContext) -> pa.Array:
    siv = AESSIV(ctx.key("encrypt"))

    def run(items: list[str]) -> list[str]:
        out = []
        for v in items:
            if not v.startswith(ENC_PREFIX):
                raise OperatorError(f"column {ctx.column or '?'}: value is not an encrypt token")
            raw = v[len(ENC_PREFIX) :]
            try:
                data = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
                out.append(siv.decrypt(data, None).decode())
            except (InvalidTag, ValueError, UnicodeDecodeError):
                raise OperatorError(
                    f"column {ctx.column or '?'}: token does not decrypt under this key"
                ) from None
        return out

    return per_distinct(values, run)


HASH = Operator(
    "hash",
    "Keyed HMAC-SHA-256 pseudonym (HMAC-SM3 with gm keys; hex), deterministic per key: "
    "joinable across files.",
    _hash,
    (
        Param("length", (int,), 16, "hex characters kept (8..64)"),
        Param("prefix", (str,), "", "text put before the pseudonym"),
    ),
    keyed=True,
)
ENCRYPT = Operator(
    "encrypt",
    "Deterministic AES-SIV encryption (RFC 5297); reversible by unmask.",
    _encrypt,
    keyed=True,
    reversible=True,
    inverse=_decrypt,
)

"""Keyed operators: ``hash`` (HMAC-SHA-256 pseudonyms) and ``encrypt`` (AES-SIV).

Both are deterministic under one key, so the same value gives the same output in
every file (joinable), and a different key gives a different output.  Each
distinct value is processed once per batch (dictionary encoding), then spread back
with ``take``.  ``encrypt`` output is ``SIV:`` + unpadded base64url (RFC 5297 AES-SIV,
512-bit key); with a key of the gm crypto suite it is ``SM4SIV:`` + base64url (the same
SIV construction over SM4: CMAC-SM4 and CTR-SM4, :mod:`gmcrypto.siv`). The prefix names
the algorithm, so ``unmask`` reverses either: tokens made before the gm suite had its own
(AES-SIV under a gm key) still decrypt.
"""

from __future__ import annotations

import base64
import hashlib
from array import array
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from desensitize.errors import OperatorError
from desensitize.operators._base import OpContext, Operator, Param
from gmcrypto import AeadFailure
from gmcrypto.siv import siv_decrypt, siv_encrypt

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.compute as pc
else:  # loaded on first use: declaring an operator needs no Arrow
    from desensitize.operators._libs import pa, pc

ENC_PREFIX = "SIV:"  # AES-SIV (RFC 5297)
SM4_ENC_PREFIX = "SM4SIV:"  # SIV over SM4 (gm suite)
ENC_PREFIXES = (ENC_PREFIX, SM4_ENC_PREFIX)  # what ``unmask`` recognises as encrypt tokens
SM4_SIV_PURPOSE = "encrypt-sm4-siv"  # its 32-byte key: CMAC-SM4 half, CTR-SM4 half

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


def _gm(ctx: OpContext) -> bool:
    suite = getattr(ctx.keyring, "suite", None)
    return suite is not None and suite.aead_alg == "sm4-gcm"


def _encrypt(values: pa.Array, params: Mapping[str, Any], ctx: OpContext) -> pa.Array:
    seal: Callable[[bytes], bytes]
    if _gm(ctx):
        key = ctx.key(SM4_SIV_PURPOSE)  # 32 bytes

        def seal(v: bytes) -> bytes:
            return siv_encrypt("sm4", key, v)
        prefix = SM4_ENC_PREFIX
    else:
        siv = AESSIV(ctx.key("encrypt"))

        def seal(v: bytes) -> bytes:
            return siv.encrypt(v, None)
        prefix = ENC_PREFIX

    def run(items: list[str]) -> list[str]:
        out = []
        for v in items:
            token = base64.urlsafe_b64encode(seal(v.encode())).rstrip(b"=")
            out.append(prefix + token.decode("ascii"))
        return out

    return per_distinct(values, run)


def _decrypt(values: pa.Array, params: Mapping[str, Any], ctx: OpContext) -> pa.Array:
    openers: dict[str, Callable[[bytes], bytes]] = {}

    def opener(prefix: str) -> Callable[[bytes], bytes]:
        if prefix not in openers:
            if prefix == SM4_ENC_PREFIX:
                key = ctx.key(SM4_SIV_PURPOSE)
                openers[prefix] = lambda data: siv_decrypt("sm4", key, data)
            else:
                siv = AESSIV(ctx.key("encrypt"))

                def open_aes(data: bytes) -> bytes:
                    return siv.decrypt(data, None)
                openers[prefix] = open_aes
        return openers[prefix]

    def run(items: list[str]) -> list[str]:
        out = []
        for v in items:
            prefix = (SM4_ENC_PREFIX if v.startswith(SM4_ENC_PREFIX)
                      else ENC_PREFIX if v.startswith(ENC_PREFIX) else None)
            if prefix is None:
                raise OperatorError(f"column {ctx.column or '?'}: value is not an encrypt token")
            raw = v[len(prefix):]
            try:
                data = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
                out.append(opener(prefix)(data).decode())
            except (InvalidTag, AeadFailure, ValueError, UnicodeDecodeError):
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
    "Deterministic AES-SIV encryption (RFC 5297; SIV over SM4, 'SM4SIV:' tokens, with gm "
    "keys); reversible by unmask.",
    _encrypt,
    keyed=True,
    reversible=True,
    inverse=_decrypt,
)

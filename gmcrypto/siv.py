"""Deterministic authenticated encryption: SIV (RFC 5297) over a 128-bit block cipher.

``cryptography`` ships AES-SIV only. The gm suite's deterministic AEAD (``sm4-siv``) is the
same construction with SM4 in place of AES: S2V with CMAC-SM4 under the first half of a
32-byte key, then CTR-SM4 under the second half, with the synthetic IV's bits 31 and 63
cleared as the counter (RFC 5297 §2.6). ``siv_encrypt(..., "aes")`` equals cryptography's
``AESSIV`` with a 32-byte key, which is how the tests hold this code to the RFC; SM4 then
only swaps the block cipher (CMAC-SM4 and CTR-SM4 come from OpenSSL through
``cryptography``). Output: ``V || C`` (16-byte synthetic IV, then the ciphertext).
"""

from __future__ import annotations

import hmac

from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from gmcrypto.errors import CryptoSuiteError
from gmcrypto.suite import AeadFailure

BLOCK = 16
_CIPHERS = {"aes": algorithms.AES, "sm4": algorithms.SM4}
_CTR_MASK = int.from_bytes(b"\xff" * 8 + b"\x7f\xff\xff\xff" * 2, "big")


def _cmac(cipher: str, key: bytes, data: bytes) -> bytes:
    c = cmac.CMAC(_CIPHERS[cipher](key))
    c.update(data)
    return c.finalize()


def _dbl(block: bytes) -> bytes:
    n = int.from_bytes(block, "big") << 1
    if n >> 128:
        n = (n & ((1 << 128) - 1)) ^ 0x87
    return n.to_bytes(BLOCK, "big")


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def _s2v(cipher: str, key: bytes, plaintext: bytes, associated: tuple[bytes, ...]) -> bytes:
    d = _cmac(cipher, key, bytes(BLOCK))
    for item in associated:
        d = _xor(_dbl(d), _cmac(cipher, key, item))
    if len(plaintext) >= BLOCK:
        t = plaintext[:-BLOCK] + _xor(plaintext[-BLOCK:], d)
    else:
        padded = plaintext + b"\x80" + bytes(BLOCK - len(plaintext) - 1)
        t = _xor(_dbl(d), padded)
    return _cmac(cipher, key, t)


def _ctr(cipher: str, key: bytes, iv: bytes, data: bytes) -> bytes:
    q = (int.from_bytes(iv, "big") & _CTR_MASK).to_bytes(BLOCK, "big")
    enc = Cipher(_CIPHERS[cipher](key), modes.CTR(q)).encryptor()
    return enc.update(data) + enc.finalize()


def _split(cipher: str, key: bytes) -> tuple[bytes, bytes]:
    if cipher not in _CIPHERS:
        raise CryptoSuiteError(f"SIV is defined here over aes or sm4, not {cipher!r}")
    if len(key) != 2 * BLOCK:
        raise CryptoSuiteError(f"{cipher}-siv takes a 32-byte key, got {len(key)}")
    return key[:BLOCK], key[BLOCK:]


def siv_encrypt(cipher: str, key: bytes, plaintext: bytes,
                associated: tuple[bytes, ...] = ()) -> bytes:
    """Deterministic: the same key and input give the same output."""
    k1, k2 = _split(cipher, key)
    v = _s2v(cipher, k1, plaintext, associated)
    return v + _ctr(cipher, k2, v, plaintext)


def siv_decrypt(cipher: str, key: bytes, sealed: bytes,
                associated: tuple[bytes, ...] = ()) -> bytes:
    """Inverse of :func:`siv_encrypt`; AeadFailure when the synthetic IV does not match."""
    k1, k2 = _split(cipher, key)
    if len(sealed) < BLOCK:
        raise AeadFailure(f"{cipher}-siv: data is too short")
    v, c = sealed[:BLOCK], sealed[BLOCK:]
    p = _ctr(cipher, k2, v, c)
    if not hmac.compare_digest(_s2v(cipher, k1, p, associated), v):
        raise AeadFailure(f"{cipher}-siv: data failed authentication (tampered or wrong key)")
    return p

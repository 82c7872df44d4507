"""hash (HMAC-SHA-256; HMAC-SM3 with gm keys) and encrypt (AES-SIV; SIV over SM4 with gm
keys): determinism, key separation, round trip. The keys are of the run's crypto suite
(``QUANGUARD_CRYPTO``); the tests naming one suite build its keys themselves."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from desensitize.errors import KeyMaterialError, OperatorError
from desensitize.keys import Keyring
from desensitize.operators import OpContext, apply_operator, invert_operator
from gmcrypto import GM, INTL, Suite
from tests.conftest import active_suite

SUITE = active_suite()
K1 = Keyring(b"\x01" * 32, SUITE)
K2 = Keyring(b"\x02" * 32, SUITE)
TOKEN = "SM4SIV:" if SUITE is GM else "SIV:"
texts = st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=30)


def run(op: str, values: Sequence[str | None], key: Keyring | None = K1, **params: object) -> list[Any]:
    out: list[Any] = apply_operator(op, pa.array(values, pa.string()), params, OpContext(key, None, "c")).to_pylist()
    return out


@settings(deadline=None)
@given(texts)
def test_hash_is_deterministic_keyed_and_injective_enough(values: list[str]) -> None:
    a, b = run("hash", values), run("hash", list(reversed(values)))
    assert a == list(reversed(b))  # same value → same pseudonym regardless of position
    other = run("hash", values, K2)
    assert all(x != y for x, y in zip(a, other, strict=True))
    mapping = dict(zip(values, a, strict=True))
    assert len(set(mapping.values())) == len(mapping)


def test_hash_is_hmac_of_the_suite_under_the_derived_key() -> None:
    key = K1.derive("hash")
    expected = SUITE.hmac(key, "张三".encode()).hex()
    if SUITE is INTL:
        assert expected == hmac.new(key, "张三".encode(), hashlib.sha256).hexdigest()
    assert run("hash", ["张三"], length=64) == [expected]
    assert run("hash", ["张三"], prefix="P-") == ["P-" + expected[:16]]


def test_hash_length_bounds() -> None:
    with pytest.raises(OperatorError):
        run("hash", ["x"], length=4)


def test_keyed_operators_need_a_key() -> None:
    for op in ("hash", "encrypt", "fpe", "fake", "noise"):
        with pytest.raises(KeyMaterialError):
            run(op, ["13812345678"], None)


@settings(deadline=None)
@given(texts)
@example(["SIV:"])  # found under the gm suite, whose token prefix is SM4SIV:
def test_encrypt_round_trip_deterministic_and_key_separated(values: list[str]) -> None:
    enc = run("encrypt", values)
    assert enc == run("encrypt", values)
    # the plaintext is not in the ciphertext body (a value may spell part of the prefix: 'SIV:')
    assert all(e.startswith(TOKEN) and (len(v) < 4 or v not in e[len(TOKEN):])
               for v, e in zip(values, enc, strict=True))
    back = invert_operator("encrypt", pa.array(enc), None, OpContext(K1)).to_pylist()
    assert back == values
    with pytest.raises(OperatorError, match="does not decrypt"):
        invert_operator("encrypt", pa.array(enc), None, OpContext(K2))


def test_decrypt_refuses_non_tokens() -> None:
    with pytest.raises(OperatorError, match="not an encrypt token"):
        invert_operator("encrypt", pa.array(["plain"]), None, OpContext(K1))


def test_hash_is_not_reversible() -> None:
    with pytest.raises(OperatorError, match="not reversible"):
        invert_operator("hash", pa.array(["x"]), None, OpContext(K1))


@settings(deadline=None)
@given(st.binary(max_size=100), st.lists(st.binary(max_size=80), max_size=20))
def test_hmac_many_matches_stdlib(key: bytes, messages: list[bytes]) -> None:
    from desensitize.operators.crypto import hmac_many

    assert hmac_many(key, messages) == [hmac.digest(key, m, "sha256") for m in messages]


@pytest.mark.parametrize("suite", [INTL, GM], ids=["intl", "gm"])
def test_encrypt_names_its_algorithm_and_both_token_kinds_decrypt(suite: Suite) -> None:
    """gm keys make SIV-over-SM4 tokens (``SM4SIV:``); AES-SIV tokens made with the same
    key before the gm suite had its own still decrypt; a forged token fails closed."""
    import base64

    from cryptography.hazmat.primitives.ciphers.aead import AESSIV

    from gmcrypto.siv import siv_decrypt

    key = Keyring(b"\x09" * 32, suite)
    ctx = OpContext(key, None, "c")
    enc = apply_operator("encrypt", pa.array(["张三", "13812345678"]), {}, ctx).to_pylist()
    prefix = "SM4SIV:" if suite is GM else "SIV:"
    assert all(e.startswith(prefix) for e in enc)
    raw = base64.urlsafe_b64decode(enc[0][len(prefix):] + "=" * (-len(enc[0][len(prefix):]) % 4))
    if suite is GM:  # really SM4: the SIV construction over SM4 under the derived key
        assert siv_decrypt("sm4", key.derive("encrypt-sm4-siv"), raw) == "张三".encode()
    old = "SIV:" + base64.urlsafe_b64encode(
        AESSIV(key.derive("encrypt")).encrypt("李四".encode(), None)).rstrip(b"=").decode()
    back = invert_operator("encrypt", pa.array([*enc, old]), None, ctx).to_pylist()
    assert back == ["张三", "13812345678", "李四"]
    forged = enc[0][:-2] + ("AA" if not enc[0].endswith("AA") else "BB")
    with pytest.raises(OperatorError, match="does not decrypt"):
        invert_operator("encrypt", pa.array([forged]), None, ctx)


def test_sm4_siv_is_the_rfc5297_construction() -> None:
    """The SIV code with AES equals cryptography's AES-SIV (RFC 5297), so the SM4 variant
    is the same construction with another block cipher."""
    import os

    from cryptography.hazmat.primitives.ciphers.aead import AESSIV

    from gmcrypto import AeadFailure
    from gmcrypto.siv import siv_decrypt, siv_encrypt

    for n in (0, 1, 15, 16, 17, 31, 32, 33, 200):
        k, p = os.urandom(32), os.urandom(n)
        assert siv_encrypt("aes", k, p) == AESSIV(k).encrypt(p, None)
        assert siv_encrypt("aes", k, p, (b"ad",)) == AESSIV(k).encrypt(p, [b"ad"])
        sealed = siv_encrypt("sm4", k, p)
        assert siv_decrypt("sm4", k, sealed) == p and sealed != siv_encrypt("aes", k, p)
        with pytest.raises(AeadFailure):
            siv_decrypt("sm4", k, sealed[:-1] + bytes([sealed[-1] ^ 1]) if n else
                        bytes([sealed[0] ^ 1]) + sealed[1:])

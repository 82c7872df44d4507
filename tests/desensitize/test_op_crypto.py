"""hash (HMAC-SHA-256) and encrypt (AES-SIV): determinism, key separation, round trip."""

from __future__ import annotations

import hashlib
import hmac

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desensitize.errors import KeyMaterialError, OperatorError
from desensitize.keys import Keyring
from desensitize.operators import OpContext, apply_operator, invert_operator

K1 = Keyring(b"\x01" * 32)
K2 = Keyring(b"\x02" * 32)
texts = st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=30)


def run(op: str, values: list, key: Keyring | None = K1, **params: object) -> list:
    return apply_operator(op, pa.array(values, pa.string()), params, OpContext(key, None, "c")).to_pylist()


@settings(deadline=None)
@given(texts)
def test_hash_is_deterministic_keyed_and_injective_enough(values: list[str]) -> None:
    a, b = run("hash", values), run("hash", list(reversed(values)))
    assert a == list(reversed(b))  # same value → same pseudonym regardless of position
    other = run("hash", values, K2)
    assert all(x != y for x, y in zip(a, other, strict=True))
    mapping = dict(zip(values, a, strict=True))
    assert len(set(mapping.values())) == len(mapping)


def test_hash_is_hmac_sha256_of_derived_key() -> None:
    key = K1.derive("hash")
    expected = hmac.new(key, "张三".encode(), hashlib.sha256).hexdigest()
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
def test_encrypt_round_trip_deterministic_and_key_separated(values: list[str]) -> None:
    enc = run("encrypt", values)
    assert enc == run("encrypt", values)
    assert all(e.startswith("SIV:") and (len(v) < 4 or v not in e) for v, e in zip(values, enc, strict=True))
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
